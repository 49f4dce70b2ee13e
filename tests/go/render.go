// Renders a table of text/template cases with Go's own text/template, for tradewatch's
// template tests: reads a JSON array of {"name", "template", "data", "option"} on standard
// input, writes a JSON array of {"output", "error"} to standard output.
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"text/template"
)

type tcase struct {
	Name     string          `json:"name"`
	Template string          `json:"template"`
	Data     json.RawMessage `json:"data"`
	Option   string          `json:"option"`
}

type result struct {
	Output string `json:"output"`
	Error  string `json:"error"`
}

func render(c tcase) (res result) {
	defer func() {
		if r := recover(); r != nil {
			res.Error = "panic"
		}
	}()
	t := template.New("t")
	if c.Option != "" {
		t = t.Option(c.Option)
	}
	t, err := t.Parse(c.Template)
	if err != nil {
		return result{Error: err.Error()}
	}
	var data interface{}
	if len(c.Data) > 0 {
		if err := json.Unmarshal(c.Data, &data); err != nil {
			return result{Error: "bad data: " + err.Error()}
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return result{Output: buf.String(), Error: err.Error()}
	}
	return result{Output: buf.String()}
}

func main() {
	var cases []tcase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	out := make([]result, len(cases))
	for i, c := range cases {
		out[i] = render(c)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		os.Exit(2)
	}
}

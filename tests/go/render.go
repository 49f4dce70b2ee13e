// Renders a table of text/template cases with Go's own text/template, for tradewatch's
// template tests: reads a JSON array of {"name", "template", "data", "option"} on standard
// input, writes a JSON array of {"output", "error"} to standard output. The option "html"
// renders with html/template instead; any other option is passed to Option. Besides Go's
// built-ins the templates may call goTime (RFC 3339 text to a time.Time) and goDuration (Go
// duration text to a time.Duration), to reach Go's time values from JSON data, and
// Alertmanager's one-line wrappers of Go's standard library: date, tz, trimSpace, stringSlice.
package main

import (
	"bytes"
	"encoding/json"
	htemplate "html/template"
	"io"
	"os"
	"strings"
	"text/template"
	"time"
)

var funcs = map[string]interface{}{
	"goTime":     func(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) },
	"goDuration": time.ParseDuration,
	"date":       func(layout string, t time.Time) string { return t.Format(layout) },
	"tz": func(name string, t time.Time) (time.Time, error) {
		loc, err := time.LoadLocation(name)
		if err != nil {
			return time.Time{}, err
		}
		return t.In(loc), nil
	},
	"trimSpace":   strings.TrimSpace,
	"stringSlice": func(s ...string) []string { return s },
}

type executor interface {
	Execute(io.Writer, interface{}) error
}

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
	var t executor
	var err error
	if c.Option == "html" {
		t, err = htemplate.New("t").Funcs(funcs).Parse(c.Template)
	} else {
		tt := template.New("t").Funcs(funcs)
		if c.Option != "" {
			tt = tt.Option(c.Option)
		}
		t, err = tt.Parse(c.Template)
	}
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

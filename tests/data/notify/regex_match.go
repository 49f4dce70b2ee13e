// Matches strings with Go's own regexp as Alertmanager compiles matcher regexes
// (`^(?:pattern)$`), for tradewatch's matcher tests: reads a JSON array of
// {"pattern", "inputs"} on standard input, writes a JSON array of {"error", "matches"}.
package main

import (
	"encoding/json"
	"os"
	"regexp"
)

type tcase struct {
	Pattern string   `json:"pattern"`
	Inputs  []string `json:"inputs"`
}

type result struct {
	Error   bool   `json:"error"`
	Matches []bool `json:"matches"`
}

func main() {
	var cases []tcase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	out := make([]result, 0, len(cases))
	for _, c := range cases {
		re, err := regexp.Compile("^(?:" + c.Pattern + ")$")
		if err != nil {
			out = append(out, result{Error: true, Matches: []bool{}})
			continue
		}
		m := make([]bool, 0, len(c.Inputs))
		for _, in := range c.Inputs {
			m = append(m, re.MatchString(in))
		}
		out = append(out, result{Matches: m})
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}

package readme

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMESnippetsAreHere: every Go snippet of README.md is in
// readme.go, line for line (at top level, or indented one tab in a
// function with "return err" as its own return), so the build checks that
// it compiles.
func TestREADMESnippetsAreHere(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	code, err := os.ReadFile("readme.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no Go snippet")
	}
	here := strings.ReplaceAll(string(code), "return nil, err", "return err")
	for _, b := range blocks {
		var want strings.Builder
		for _, line := range strings.SplitAfter(b[1], "\n") {
			if strings.TrimSpace(line) != "" {
				want.WriteString("\t")
			}
			want.WriteString(line)
		}
		if !strings.Contains(here, want.String()) && !strings.Contains(here, b[1]) {
			t.Errorf("README.md's snippet is not in readme.go, so nothing checks it compiles:\n%s", b[1])
		}
	}
}

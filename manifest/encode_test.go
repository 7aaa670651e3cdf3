package manifest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppendJSONDecodesToTheSameTree(t *testing.T) {
	for _, in := range []string{
		`{"a": [1, 2.5, -3e10, true, false, null, "x"], "b": {"c": {}}, "d": []}`,
		`{"quote\"key": "tab\tnewline\n<html>&amp;", "ü": "日本語", "ctl": "\u0001\u2028"}`,
		`"plain"`, `12345678901234567890`, `null`,
	} {
		tree := mustTree(t, in)
		out, err := appendJSON(nil, tree)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(out) {
			t.Fatalf("%s: invalid JSON %s", in, out)
		}
		if diff := cmp.Diff(tree, mustTree(t, string(out))); diff != "" {
			t.Errorf("%s: (-in +round trip):\n%s", in, diff)
		}
	}
}

func TestAppendJSONRejectsABadNumber(t *testing.T) {
	if _, err := appendJSON(nil, map[string]any{"n": json.Number("1x")}); err == nil {
		t.Fatal("an invalid json.Number was written")
	}
}

func FuzzAppendJSON(f *testing.F) {
	f.Add(`{"a": ["x", 1, null, {"b": "\u2028"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		tree, err := decodeJSON([]byte(in))
		if err != nil {
			return
		}
		out, err := appendJSON(nil, tree)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		back, err := decodeJSON(out)
		if err != nil {
			t.Fatalf("%q encoded as invalid %q: %v", in, out, err)
		}
		if diff := cmp.Diff(tree, back); diff != "" {
			t.Fatalf("%q: (-in +round trip):\n%s", in, diff)
		}
	})
}

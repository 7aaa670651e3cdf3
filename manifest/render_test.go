package manifest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

func mustTree(t *testing.T, js string) any {
	t.Helper()
	v, err := decodeJSON([]byte(js))
	if err != nil {
		t.Fatalf("bad JSON in test: %v", err)
	}
	return v
}

func TestRender(t *testing.T) {
	values := `{
		"name": "etl", "count": 3, "ratio": 0.5, "on": true, "off": false, "nothing": null,
		"env": {"A": "1", "B": "2"}, "list": ["x", "y"], "deep": {"a": {"b": [10, {"c": "found"}]}},
		"evil": "{{ name }}", "big": 9007199254740993
	}`
	env := map[string]string{"HOME": "/root", "EMPTY": ""}
	tests := []struct {
		name string
		in   string // JSON tree to render
		want string // JSON tree expected
	}{
		{"a whole placeholder becomes a typed map", `{"env": "{{ env }}"}`, `{"env": {"A": "1", "B": "2"}}`},
		{"a whole placeholder becomes a typed list", `{"l": "{{ list }}"}`, `{"l": ["x", "y"]}`},
		{"a whole placeholder becomes an integer", `{"n": "{{ count }}"}`, `{"n": 3}`},
		{"a whole placeholder keeps a large integer exact", `{"n": "{{ big }}"}`, `{"n": 9007199254740993}`},
		{"a whole placeholder becomes a float", `{"n": "{{ ratio }}"}`, `{"n": 0.5}`},
		{"a whole placeholder becomes a boolean", `{"b": "{{ on }}"}`, `{"b": true}`},
		{"a whole placeholder becomes null for a nil value", `["{{ nothing }}"]`, `[null]`},
		{"a null map entry is unset, so its key goes", `{"x": "{{ nothing }}", "y": null, "z": 1}`, `{"z": 1}`},
		{"a missing whole placeholder removes the map key", `{"x": "{{ missing }}", "y": 1}`, `{"y": 1}`},
		{"a missing whole placeholder removes the list item", `["a", "{{ missing }}", "b"]`, `["a", "b"]`},
		{"whitespace inside braces is optional", `["{{name}}", "{{   name   }}", "{{ name}}"]`, `["etl", "etl", "etl"]`},
		{"an embedded placeholder is text", `"job-{{ name }}-{{ count }}"`, `"job-etl-3"`},
		{"an embedded missing value is empty", `"a{{ missing }}b"`, `"ab"`},
		{"an embedded nil is empty, not None", `"a{{ nothing }}b"`, `"ab"`},
		{"embedded booleans read true and false", `"{{ on }}/{{ off }}"`, `"true/false"`},
		{"an embedded map reads as JSON", `"env={{ env }}"`, `"env={\"A\":\"1\",\"B\":\"2\"}"`},
		{"an embedded list reads as JSON", `"l={{ list }}"`, `"l=[\"x\",\"y\"]"`},
		{"dotted paths and indices reach into values", `"{{ deep.a.b[1].c }}"`, `"found"`},
		{"an index past the end is missing", `{"x": "{{ list[5] }}"}`, `{}`},
		{"a key on a list is missing", `{"x": "{{ list.a }}"}`, `{}`},
		{"map keys are never templated", `{"{{ name }}": "v"}`, `{"{{ name }}": "v"}`},
		{"a value holding a placeholder is inserted literally, whole", `{"x": "{{ evil }}"}`, `{"x": "{{ name }}"}`},
		{"a value holding a placeholder is inserted literally, embedded", `"a-{{ evil }}"`, `"a-{{ name }}"`},
		{"$NAME reads the lookup", `"{{ $HOME }}/bin"`, `"/root/bin"`},
		{"$NAME present but empty is empty", `{"x": "{{ $EMPTY }}"}`, `{"x": ""}`},
		{"$NAME missing from the lookup is missing", `{"x": "{{ $NOPE }}"}`, `{}`},
		{"numbers and booleans in the template pass through", `{"a": 1, "b": false, "c": [null]}`, `{"a": 1, "b": false, "c": [null]}`},
		{"unicode names are allowed", `"a{{ ünï }}"`, `"a"`},
		{"a brace before a placeholder is text", `"{{{ name }}}"`, `"{etl}"`},
	}
	vals := mustTree(t, values).(map[string]any)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := renderer{values: valueSet{given: vals}, env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
			in := mustTree(t, tt.in)
			before, _ := json.Marshal(in)
			got, ok := renderAt(&r, in, field.NewPath("x"))
			if !ok || len(r.errs) > 0 {
				t.Fatalf("render: ok=%v errs=%v", ok, r.errs)
			}
			if diff := cmp.Diff(mustTree(t, tt.want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if after, _ := json.Marshal(in); string(after) != string(before) {
				t.Errorf("render changed its input: %s → %s", before, after)
			}
		})
	}
}

func TestRenderWithoutLookupTreatsEveryEnvPlaceholderAsMissing(t *testing.T) {
	r := renderer{}
	got, _ := renderAt(&r, mustTree(t, `{"x": "{{ $HOME }}", "y": "a{{ $HOME }}"}`), field.NewPath("x"))
	if diff := cmp.Diff(mustTree(t, `{"y": "a"}`), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestRenderDoesNotShareStructureWithTheCallersValues: a Config shares
// what it took with the Template (it is read-only), never with the
// caller's values, which the caller may change afterwards.
func TestRenderDoesNotShareStructureWithTheCallersValues(t *testing.T) {
	tmpl, err := Load([]byte(`
job_configuration:
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    metadata: {annotations: "{{ notes }}"}
variables:
  properties:
    notes: {type: object}
`))
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{"notes": map[string]any{"a": "1"}}
	cfg, err := tmpl.Render(vals, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	vals["notes"].(map[string]any)["a"] = "changed"
	got := cfg.JobManifest["metadata"].(map[string]any)["annotations"].(map[string]any)["a"]
	if got != "1" {
		t.Fatalf("changing the values after Render changed the Config: %v", got)
	}
}

func TestMalformedPlaceholders(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"a placeholder that never closes", "image: {{ image", "never closes"},
		{"a single closing brace", "{{ image }", "never closes"},
		{"a space inside the name", "{{ a b }}", "malformed placeholder at offset 0"},
		{"a name starting with a dot", "{{ .x }}", "bad name"},
		{"a non-numeric index", "{{ a[x] }}", "bad name"},
		{"an index first", "{{ [0] }}", "bad name"},
		{"an empty key", "{{ a..b }}", "bad name"},
		{"a lone dollar", "{{ $ }}", "bad environment placeholder"},
		{"a dollar path", "{{ $A.b }}", "bad environment placeholder"},
		{"an empty placeholder", "{{}}", "malformed placeholder"},
		{"a stray opening after a good one", "{{ a }} and {{ b", "offset 12 never closes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := renderer{values: valueSet{given: map[string]any{"a": "x"}}}
			renderAt(&r, map[string]any{"k": tt.in}, field.NewPath("job_configuration"))
			if len(r.errs) != 1 {
				t.Fatalf("got %d errors %v, want 1", len(r.errs), r.errs)
			}
			if r.errs[0].Field != "job_configuration.k" {
				t.Errorf("error path %q, want job_configuration.k", r.errs[0].Field)
			}
			if !strings.Contains(r.errs[0].Error(), tt.wantErr) {
				t.Errorf("error %q does not say %q", r.errs[0].Error(), tt.wantErr)
			}
		})
	}
}

func TestTextWithoutPlaceholdersIsLeftAlone(t *testing.T) {
	for _, s := range []string{"", "plain", "a } b", "}} {", "{ {x} }", "$HOME", "{x}"} {
		ps, err := findPlaceholders(s)
		if err != nil || len(ps) != 0 {
			t.Errorf("%q: got %v, %v; want no placeholders", s, ps, err)
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// renderAt renders v from root and says whether it is present.
func renderAt(r *renderer, v any, root *field.Path) (any, bool) {
	r.root = root
	out, ok, _ := r.render(v)
	return out, ok
}

func TestRenderAndPrepareNeverChangeTheTemplate(t *testing.T) {
	tmpl := Default()
	before, _ := json.Marshal(tmpl)
	for i := range 3 {
		cfg, err := tmpl.Render(map[string]any{"env": map[string]any{"A": "1"}, "labels": map[string]any{"x": "y"}}, RenderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfgBefore, _ := json.Marshal(cfg.JobManifest)
		for j := range 2 {
			if _, err := cfg.Prepare(Run{ID: fmt.Sprintf("r%d-%d", i, j), Env: map[string]string{"B": "2"}, Labels: map[string]string{"l": "v"}},
				PrepareOptions{Customizations: map[bool][]byte{true: []byte(`[{"op":"add","path":"/spec/suspend","value":true}]`)}[j == 1]}); err != nil {
				t.Fatal(err)
			}
		}
		if after, _ := json.Marshal(cfg.JobManifest); string(after) != string(cfgBefore) {
			t.Fatalf("Prepare changed the Config:\n%s\n%s", cfgBefore, after)
		}
	}
	if after, _ := json.Marshal(tmpl); string(after) != string(before) {
		t.Fatalf("Render or Prepare changed the Template:\n%s\n%s", before, after)
	}
}

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
		{"a missing whole placeholder removes the map key (lenient)", `{"x": "{{ missing }}", "y": 1}`, `{"y": 1}`},
		{"a missing whole placeholder removes the list item (lenient)", `["a", "{{ missing }}", "b"]`, `["a", "b"]`},
		{"whitespace inside braces is optional", `["{{name}}", "{{   name   }}", "{{ name}}"]`, `["etl", "etl", "etl"]`},
		{"an embedded placeholder is text", `"job-{{ name }}-{{ count }}"`, `"job-etl-3"`},
		{"an embedded missing value is empty (lenient)", `"a{{ missing }}b"`, `"ab"`},
		{"an embedded nil is empty, not None", `"a{{ nothing }}b"`, `"ab"`},
		{"embedded booleans read true and false", `"{{ on }}/{{ off }}"`, `"true/false"`},
		{"an embedded map reads as JSON", `"env={{ env }}"`, `"env={\"A\":\"1\",\"B\":\"2\"}"`},
		{"an embedded list reads as JSON", `"l={{ list }}"`, `"l=[\"x\",\"y\"]"`},
		{"dotted paths and indices reach into values", `"{{ deep.a.b[1].c }}"`, `"found"`},
		{"an index past the end is missing (lenient)", `{"x": "{{ list[5] }}"}`, `{}`},
		{"a key on a list is missing (lenient)", `{"x": "{{ list.a }}"}`, `{}`},
		{"map keys are never templated", `{"{{ name }}": "v"}`, `{"{{ name }}": "v"}`},
		{"a value holding a placeholder is inserted literally, whole", `{"x": "{{ evil }}"}`, `{"x": "{{ name }}"}`},
		{"a value holding a placeholder is inserted literally, embedded", `"a-{{ evil }}"`, `"a-{{ name }}"`},
		{"$NAME reads the lookup", `"{{ $HOME }}/bin"`, `"/root/bin"`},
		{"$NAME present but empty is empty", `{"x": "{{ $EMPTY }}"}`, `{"x": ""}`},
		{"$NAME missing from the lookup is empty and keeps its key (lenient)", `{"x": "{{ $NOPE }}", "y": "a{{ $NOPE }}b"}`, `{"x": "", "y": "ab"}`},
		{"numbers and booleans in the template pass through", `{"a": 1, "b": false, "c": [null]}`, `{"a": 1, "b": false, "c": [null]}`},
		{"unicode names are allowed (lenient)", `"a{{ ünï }}"`, `"a"`},
		{"a brace before a placeholder is text", `"{{{ name }}}"`, `"{etl}"`},
	}
	vals := mustTree(t, values).(map[string]any)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lenient := strings.HasSuffix(tt.name, "(lenient)")
			r := renderer{values: valueSet{given: vals}, env: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
				allowUnknown: lenient, allowMissingEnv: lenient}
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
	r := renderer{allowMissingEnv: true}
	got, _ := renderAt(&r, mustTree(t, `{"x": "{{ $HOME }}", "y": "a{{ $HOME }}"}`), field.NewPath("x"))
	if diff := cmp.Diff(mustTree(t, `{"x": "", "y": "a"}`), got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r = renderer{}
	renderAt(&r, mustTree(t, `{"x": "{{ $HOME }}"}`), field.NewPath("x"))
	if len(r.errs) != 1 || !strings.Contains(r.errs[0].Error(), "environment variable HOME is not set") {
		t.Errorf("errors %v, want one naming HOME", r.errs)
	}
}

// TestRenderStrictNamesWhatIsMissing: by default nothing vanishes without
// a word, except what Prefect users rely on vanishing: a declared variable
// with no value, and a base field of the job configuration.
func TestRenderStrictNamesWhatIsMissing(t *testing.T) {
	props := map[string]*Property{"declared": {}}
	tests := []struct {
		name, in, want, err string
	}{
		{"a declared variable with no value removes its key", `{"x": "{{ declared }}", "y": 1}`, `{"y": 1}`, ""},
		{"a base field with no value removes its key", `{"x": "{{ env }}", "y": "a{{ labels }}"}`, `{"y": "a"}`, ""},
		{"an unknown whole placeholder is an error", `{"x": "{{ nope }}"}`, ``, `x.x: Invalid value: "{{ nope }}": placeholder "nope" names no variable (the template has: declared)`},
		{"an unknown embedded placeholder is an error", `["a", "b{{ nope.x }}"]`, ``, `x[1]: Invalid value: "b{{ nope.x }}": placeholder "nope.x" names no variable`},
		{"a missing environment variable is an error", `{"x": {"y": "{{ $NOPE }}"}}`, ``, `x.x.y: Invalid value: "{{ $NOPE }}": placeholder "$NOPE": environment variable NOPE is not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := renderer{values: valueSet{props: props}}
			got, _ := renderAt(&r, mustTree(t, tt.in), field.NewPath("x"))
			if tt.err == "" {
				if len(r.errs) > 0 {
					t.Fatalf("errors: %v", r.errs)
				}
				if diff := cmp.Diff(mustTree(t, tt.want), got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				return
			}
			if len(r.errs) != 1 || !strings.Contains(r.errs[0].Error(), tt.err) {
				t.Errorf("errors %v, want one containing %q", r.errs, tt.err)
			}
		})
	}
}

// TestLoadNamesUnknownPlaceholders: a template's own placeholders are
// checked at Load, every problem at once and in the same order each time.
func TestLoadNamesUnknownPlaceholders(t *testing.T) {
	src := []byte(`
job_configuration:
  env: "{{ env }}"
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    metadata: {labels: {a: "{{ zeta }}", b: "{{ alpha }}", c: "{{ image }}", d: "{{ $HOME }}"}}
variables:
  properties:
    image: {type: string}
`)
	var first string
	for i := range 20 {
		_, err := Load(src)
		if err == nil {
			t.Fatal("Load accepted placeholders that name nothing")
		}
		if i == 0 {
			first = err.Error()
			if !strings.Contains(first, "2 problems") || strings.Index(first, "labels.a") > strings.Index(first, "labels.b") ||
				!strings.Contains(first, `labels.a: Invalid value: "{{ zeta }}"`) {
				t.Fatalf("got %v, want labels.a (zeta) then labels.b (alpha)", err)
			}
		} else if err.Error() != first {
			t.Fatalf("Load gave another message:\n%v\nthen:\n%v", first, err)
		}
	}
	tmpl, err := LoadWithOptions(src, LoadOptions{AllowUnknownPlaceholders: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmpl.Render(map[string]any{"image": "i"}, RenderOptions{}); err == nil {
		t.Error("Render without the opt-out accepted them")
	}
	cfg, err := tmpl.Render(map[string]any{"image": "i"}, RenderOptions{AllowUnknownPlaceholders: true, AllowMissingEnv: true})
	if err != nil {
		t.Fatal(err)
	}
	labels := cfg.JobManifest["metadata"].(map[string]any)["labels"]
	if diff := cmp.Diff(map[string]any{"c": "i", "d": ""}, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
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

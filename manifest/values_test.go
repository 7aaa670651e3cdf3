package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const valuesTemplate = `
job_configuration:
  job_manifest: {}
variables:
  type: object
  required: [image]
  properties:
    image: {type: string}
    namespace: {type: string, default: default}
    env: {type: object, default: {A: "1", B: "2"}, additionalProperties: {anyOf: [{type: string}, {type: "null"}]}}
    labels: {type: object, default: {}}
    retries: {type: integer, minimum: 0, maximum: 10, default: 3}
    ratio: {type: number}
    policy: {type: string, enum: [IfNotPresent, Always, Never], default: IfNotPresent}
    ttl: {anyOf: [{type: integer, minimum: 1}, {type: "null"}], default: null}
    flag: {type: boolean}
    a.b: {type: string}
`

func loadValuesTemplate(t *testing.T) *Template {
	t.Helper()
	tmpl, err := Load([]byte(valuesTemplate))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestValues(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want string // JSON
	}{
		{"defaults fill what the caller leaves out", map[string]any{"image": "x"},
			`{"image": "x", "namespace": "default", "env": {"A": "1", "B": "2"}, "labels": {}, "retries": 3, "policy": "IfNotPresent", "ttl": null}`},
		{"caller values override defaults", map[string]any{"image": "x", "namespace": "jobs", "retries": 0},
			`{"image": "x", "namespace": "jobs", "env": {"A": "1", "B": "2"}, "labels": {}, "retries": 0, "policy": "IfNotPresent", "ttl": null}`},
		{"env maps are merged, not replaced", map[string]any{"image": "x", "env": map[string]string{"B": "b", "C": "c"}},
			`{"image": "x", "namespace": "default", "env": {"A": "1", "B": "b", "C": "c"}, "labels": {}, "retries": 3, "policy": "IfNotPresent", "ttl": null}`},
		{"dotted keys nest under their variable", map[string]any{"image": "x", "env.C": "c", "labels.example.com/team": "t"},
			`{"image": "x", "namespace": "default", "env": {"A": "1", "B": "2", "C": "c"}, "labels": {"example.com/team": "t"}, "retries": 3, "policy": "IfNotPresent", "ttl": null}`},
		{"a variable whose name has a dot is set as named", map[string]any{"image": "x", "a.b": "v"},
			`{"image": "x", "a.b": "v", "namespace": "default", "env": {"A": "1", "B": "2"}, "labels": {}, "retries": 3, "policy": "IfNotPresent", "ttl": null}`},
		{"Go integers and floats are accepted", map[string]any{"image": "x", "retries": int64(7), "ratio": float32(0.5), "ttl": uint8(9)},
			`{"image": "x", "namespace": "default", "env": {"A": "1", "B": "2"}, "labels": {}, "retries": 7, "ratio": 0.5, "policy": "IfNotPresent", "ttl": 9}`},
		{"2.0 counts as an integer", map[string]any{"image": "x", "retries": 2.0},
			`{"image": "x", "namespace": "default", "env": {"A": "1", "B": "2"}, "labels": {}, "retries": 2, "policy": "IfNotPresent", "ttl": null}`},
		{"a null env value is kept for the render to drop", map[string]any{"image": "x", "env": map[string]any{"A": nil}},
			`{"image": "x", "namespace": "default", "env": {"A": null, "B": "2"}, "labels": {}, "retries": 3, "policy": "IfNotPresent", "ttl": null}`},
	}
	tmpl := loadValuesTemplate(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tmpl.Values(tt.in, ValuesOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(mustTree(t, tt.want), any(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestValuesReportsEveryProblemAtOnce(t *testing.T) {
	tmpl := loadValuesTemplate(t)
	_, err := tmpl.Values(map[string]any{
		"retries": 11,
		"ratio":   "half",
		"policy":  "Sometimes",
		"ttl":     0,
		"flag":    "yes",
		"env":     map[string]any{"A": 1},
		"nope":    true,
	}, ValuesOptions{})
	var me *Error
	if !errors.As(err, &me) {
		t.Fatalf("got %v, want a *manifest.Error", err)
	}
	want := map[string]field.ErrorType{
		"values.image":   field.ErrorTypeRequired,
		"values.retries": field.ErrorTypeInvalid,
		"values.ratio":   field.ErrorTypeTypeInvalid,
		"values.policy":  field.ErrorTypeNotSupported,
		"values.ttl":     field.ErrorTypeInvalid,
		"values.flag":    field.ErrorTypeTypeInvalid,
		"values.env.A":   field.ErrorTypeInvalid,
		"values.nope":    field.ErrorTypeInvalid,
	}
	got := map[string]field.ErrorType{}
	for _, fe := range me.Errs {
		got[fe.Field] = fe.Type
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nfull error:\n%v", diff, err)
	}
	var fe *field.Error
	if !errors.As(err, &fe) {
		t.Error("a single *field.Error is not reachable with errors.As")
	}
	if me.Step != "values" || !strings.HasPrefix(err.Error(), "manifest: values: 8 problems") {
		t.Errorf("message %q", err.Error())
	}
}

func TestValuesAllowUnknownKeepsUnknownNames(t *testing.T) {
	got, err := loadValuesTemplate(t).Values(map[string]any{"image": "x", "extra": "e"}, ValuesOptions{AllowUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if got["extra"] != "e" {
		t.Errorf("extra = %v, want e", got["extra"])
	}
}

func TestValuesRejectsWhatIsNotJSON(t *testing.T) {
	_, err := loadValuesTemplate(t).Values(map[string]any{"image": "x", "labels": make(chan int)}, ValuesOptions{})
	if err == nil || !strings.Contains(err.Error(), "values.labels") {
		t.Fatalf("got %v, want an error naming values.labels", err)
	}
}

func TestValuesDoNotChangeDefaults(t *testing.T) {
	tmpl := loadValuesTemplate(t)
	if _, err := tmpl.Values(map[string]any{"image": "x", "env": map[string]any{"A": "changed"}}, ValuesOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := tmpl.Variables.Properties["env"].Default.(map[string]any)["A"]; got != "1" {
		t.Fatalf("default env A = %v after a call, want 1", got)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string // "" for success
	}{
		{"YAML", "job_configuration: {job_manifest: {}}\nvariables: {properties: {a: {type: string, default: x}}}", ""},
		{"JSON", `{"job_configuration": {"job_manifest": {}}, "variables": {"properties": {"a": {"type": ["string", "null"]}}}}`, ""},
		{"unknown schema keywords are ignored", `{"job_configuration": {"job_manifest": {}}, "variables": {"definitions": {}, "properties": {"a": {"$ref": "#/x", "format": "uri"}}}}`, ""},
		{"malformed YAML", "job_configuration: [", "not valid YAML or JSON"},
		{"not an object", "- a\n- b", "must be an object with job_configuration"},
		{"job_configuration missing", "variables: {}", "job_configuration: Required value"},
		{"job_manifest missing", "job_configuration: {}", "job_configuration.job_manifest: Required value"},
		{"job_manifest not an object", "job_configuration: {job_manifest: [1]}", "job_configuration.job_manifest: Invalid value: \"array\""},
		{"unknown top-level key", "job_configuration: {job_manifest: {}}\nextra: 1", "extra: Unsupported value"},
		{"an unclosed placeholder names its path", "job_configuration: {job_manifest: {spec: {x: [\"{{ a\"]}}}", "job_configuration.job_manifest.spec.x[0]"},
		{"a default that breaks its schema", "job_configuration: {job_manifest: {}}\nvariables: {properties: {num: {type: integer, default: x}}}", "variables.properties.num.default"},
		{"a required name with no property", "job_configuration: {job_manifest: {}}\nvariables: {required: [ghost]}", "variables.required"},
		{"a bad type keyword", "job_configuration: {job_manifest: {}}\nvariables: {properties: {n: {type: 5}}}", "type must be a string or a list"},
		{"trailing JSON", `{"job_configuration": {"job_manifest": {}}} {}`, "not valid YAML or JSON"},
		{"a second YAML document", "job_configuration: {job_manifest: {}}\n---\nkind: Other\n", "more than one YAML document"},
		{"a trailing comment document is fine", "job_configuration: {job_manifest: {}}\n---\n# done\n", ""},
		{"a leading document marker is fine", "---\njob_configuration: {job_manifest: {}}\n", ""},
		{"YAML 1.1 reads an unquoted n as false", "job_configuration: {job_manifest: {}}\nvariables: {properties: {n: {type: integer, default: x}}}", "variables.properties.false.default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			}
			var me *Error
			if !errors.As(err, &me) || me.Step != "load" {
				t.Errorf("got %T, want a *manifest.Error of step load", err)
			}
		})
	}
}

func TestDefaultTemplateRoundTripsThroughJSON(t *testing.T) {
	d := Default()
	data, err := jsonMarshal(d)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(data)
	if err != nil {
		t.Fatalf("reloading the default as JSON: %v", err)
	}
	if diff := cmp.Diff(d, again); diff != "" {
		t.Errorf("(-default +reloaded):\n%s", diff)
	}
}

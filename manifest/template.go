package manifest

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Template is a base job template, as Prefect's: a job configuration whose
// strings may hold placeholders, and the schema of the variables that fill
// them.
type Template struct {
	// JobConfiguration holds job_manifest (the Job) and the base fields
	// name, namespace, env, labels, annotations, command, cluster_config,
	// job_watch_timeout_seconds, pod_watch_timeout_seconds and stream_output.
	JobConfiguration map[string]any `json:"job_configuration"`
	// Variables is the JSON-Schema object of the values.
	Variables Schema `json:"variables"`
	// JobFile marks a complete Job loaded by LoadJob (Prefect 1's job
	// environment): Prepare appends the run's env after the container's own,
	// and an empty image or args list counts as absent.
	JobFile bool `json:"-"`
}

// Schema is the variables section of a template: a JSON-Schema object.
// Keywords other than those of Schema and Property are ignored, so that
// templates written for Prefect load as they are.
type Schema struct {
	Type       string               `json:"type,omitempty"`
	Properties map[string]*Property `json:"properties,omitempty"`
	Required   []string             `json:"required,omitempty"`
}

// Property is the schema of one variable, or of a part of one.
type Property struct {
	// Type is "string", "integer", "number", "boolean", "object", "array"
	// or "null"; in JSON it may also be a list of them.
	Type        Types  `json:"type,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	// Default is used when the caller gives no value; HasDefault says
	// whether there is one, since a default may be null.
	Default              any         `json:"default,omitempty"`
	HasDefault           bool        `json:"-"`
	Enum                 []any       `json:"enum,omitempty"`
	Minimum              *float64    `json:"minimum,omitempty"`
	Maximum              *float64    `json:"maximum,omitempty"`
	AnyOf                []*Property `json:"anyOf,omitempty"`
	AdditionalProperties *Property   `json:"additionalProperties,omitempty"`
	Examples             []any       `json:"examples,omitempty"`
}

// Types is a JSON-Schema "type": one name, or a list of names.
type Types []string

// UnmarshalJSON accepts a string or a list of strings.
func (t *Types) UnmarshalJSON(data []byte) error {
	var one string
	if err := json.Unmarshal(data, &one); err == nil {
		*t = Types{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(data, &many); err != nil {
		return fmt.Errorf("type must be a string or a list of strings")
	}
	*t = many
	return nil
}

// MarshalJSON writes one name as a string, several as a list.
func (t Types) MarshalJSON() ([]byte, error) {
	if len(t) == 1 {
		return json.Marshal(t[0])
	}
	return json.Marshal([]string(t))
}

// UnmarshalJSON records whether "default" was present, and keeps numbers
// exact.
func (p *Property) UnmarshalJSON(data []byte) error {
	type plain Property
	var raw struct {
		plain
		Default json.RawMessage `json:"default"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*p = Property(raw.plain)
	if raw.Default != nil {
		d, err := decodeJSON(raw.Default)
		if err != nil {
			return fmt.Errorf("default: %w", err)
		}
		p.Default, p.HasDefault = d, true
	}
	return nil
}

// MarshalJSON writes "default" whenever HasDefault is set, null included.
func (p Property) MarshalJSON() ([]byte, error) {
	type plain Property
	if !p.HasDefault {
		p.Default = nil
		return json.Marshal(plain(p))
	}
	return json.Marshal(struct {
		plain
		Default any `json:"default"`
	}{plain(p), p.Default})
}

//go:embed default.yaml
var defaultYAML []byte

// Default returns a new copy of the default template: Prefect's default Job
// and variables, with parallelism and completions in the Job spec where
// they belong. Rendered with no values it gives a Job the API server
// accepts.
func Default() *Template {
	t, err := Load(defaultYAML)
	if err != nil {
		panic("manifest: default template: " + err.Error()) // covered by tests
	}
	return t
}

// DefaultYAML returns the default template as YAML, to start a custom one.
func DefaultYAML() []byte {
	return append([]byte(nil), defaultYAML...)
}

// LoadOptions says how a template is loaded. The zero value is strict.
type LoadOptions struct {
	// AllowUnknownPlaceholders accepts placeholders that name no variable
	// (see RenderOptions.AllowUnknownPlaceholders, which Render also needs
	// then). Default: each is an error naming it and its path.
	AllowUnknownPlaceholders bool
}

// Load parses a template from YAML or JSON. YAML is read as Kubernetes
// reads it (YAML 1.1, sigs.k8s.io/yaml): unquoted y, n, yes, no, on and off
// are booleans, even as keys, so quote them. It checks the template's shape:
// job_configuration.job_manifest is an object, every placeholder is well
// formed and names a variable or a base field, and each variable's schema
// and default make sense. Every problem is reported at once, sorted by
// path. It does not render or validate the Job; Render and Prepare do.
func Load(data []byte) (*Template, error) { return LoadWithOptions(data, LoadOptions{}) }

// LoadWithOptions is Load with options.
func LoadWithOptions(data []byte, opts LoadOptions) (*Template, error) {
	tree, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return nil, asError("load", field.ErrorList{field.TypeInvalid(field.NewPath("<document>"), kindOf(tree), "a template must be an object with job_configuration and variables")})
	}
	var errs field.ErrorList
	t := &Template{}
	for k, v := range top {
		switch k {
		case "job_configuration":
			jc, ok := v.(map[string]any)
			if !ok {
				errs = append(errs, field.TypeInvalid(field.NewPath(k), kindOf(v), "must be an object"))
				continue
			}
			t.JobConfiguration = jc
		case "variables":
			data, _ := json.Marshal(v)
			if err := json.Unmarshal(data, &t.Variables); err != nil {
				errs = append(errs, field.Invalid(field.NewPath(k), kindOf(v), err.Error()))
			}
		default:
			errs = append(errs, field.NotSupported(field.NewPath(k), k, []string{"job_configuration", "variables"}))
		}
	}
	if t.JobConfiguration == nil && len(errs) == 0 {
		errs = append(errs, field.Required(field.NewPath("job_configuration"), ""))
	}
	errs = append(errs, t.check(!opts.AllowUnknownPlaceholders)...)
	if err := asError("load", sortErrors(errs)); err != nil {
		return nil, err
	}
	return t, nil
}

// LoadJob makes a template of a complete Job manifest in YAML or JSON, as
// Prefect 1's job environment did with a job spec file. The Job may still
// hold placeholders; the template has no variables. Its run container (the
// first, or the one PrepareOptions names) gets the run's image, args and
// env; the run labels are set; nothing else moves.
func LoadJob(data []byte) (*Template, error) {
	tree, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	job, ok := tree.(map[string]any)
	if !ok {
		return nil, asError("load", field.ErrorList{field.TypeInvalid(field.NewPath("job_manifest"), kindOf(tree), "a Job manifest must be an object")})
	}
	t := &Template{JobConfiguration: map[string]any{"job_manifest": job}, JobFile: true}
	if err := asError("load", sortErrors(t.check(false))); err != nil {
		return nil, err
	}
	return t, nil
}

// check reports problems in a loaded template's shape; with known, also
// placeholders that name no variable or base field.
func (t *Template) check(known bool) field.ErrorList {
	var errs field.ErrorList
	jc := field.NewPath("job_configuration")
	if t.JobConfiguration != nil {
		if m, ok := t.JobConfiguration["job_manifest"]; !ok {
			errs = append(errs, field.Required(jc.Child("job_manifest"), "the Job to create"))
		} else if _, ok := m.(map[string]any); !ok {
			errs = append(errs, field.TypeInvalid(jc.Child("job_manifest"), kindOf(m), "must be an object"))
		}
		var vs *valueSet
		if known {
			vs = &valueSet{props: t.Variables.Properties}
		}
		errs = append(errs, checkPlaceholders(t.JobConfiguration, jc, vs)...)
	}
	vp := field.NewPath("variables")
	for name, p := range t.Variables.Properties {
		if p == nil {
			errs = append(errs, field.Required(vp.Child("properties", name), "a schema"))
			continue
		}
		if p.HasDefault {
			errs = append(errs, checkValue(p, p.Default, vp.Child("properties", name, "default"))...)
		}
	}
	for _, name := range t.Variables.Required {
		if _, ok := t.Variables.Properties[name]; !ok {
			errs = append(errs, field.Invalid(vp.Child("required"), name, "names no property"))
		}
	}
	return errs
}

// checkPlaceholders reports every malformed placeholder below v and, if
// vs is set, every one whose name vs does not know.
func checkPlaceholders(v any, path *field.Path, vs *valueSet) field.ErrorList {
	var errs field.ErrorList
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			errs = append(errs, checkPlaceholders(c, path.Child(k), vs)...)
		}
	case []any:
		for i, c := range t {
			errs = append(errs, checkPlaceholders(c, path.Index(i), vs)...)
		}
	case string:
		ps, err := findPlaceholders(t)
		if err != nil {
			errs = append(errs, field.Invalid(path, t, err.Error()))
		}
		for _, p := range ps {
			if vs != nil && p.ref.env == "" && !vs.known(p.ref.path[0].key) {
				errs = append(errs, field.Invalid(path, t, unknownPlaceholder(p.ref.name, vs.props)))
			}
		}
	}
	return errs
}

// parseDocument reads one YAML or JSON document into a JSON tree. A second
// document, or data after the JSON value, is an error, not ignored.
func parseDocument(data []byte) (any, error) {
	root := field.NewPath("<document>")
	fail := func(detail string) error {
		return &Error{Step: "load", Errs: field.ErrorList{field.Invalid(root, field.OmitValueType{}, detail)}}
	}
	js := data
	if trimmed := bytes.TrimSpace(data); len(trimmed) == 0 || trimmed[0] != '{' {
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		doc, err := r.Read()
		if err != nil && err != io.EOF {
			return nil, fail("not valid YAML or JSON: " + err.Error())
		}
		for {
			more, err := r.Read()
			if err == io.EOF {
				break
			}
			if err != nil || len(bytes.TrimSpace(more)) > 0 && !isComment(more) {
				return nil, fail("more than one YAML document: a template is one document")
			}
		}
		if js, err = yaml.YAMLToJSON(doc); err != nil {
			return nil, fail("not valid YAML or JSON: " + err.Error())
		}
	}
	tree, err := decodeJSON(js)
	if err != nil {
		return nil, fail("not valid YAML or JSON: " + err.Error())
	}
	return tree, nil
}

// isComment reports whether a YAML document holds only comments.
func isComment(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' && !bytes.Equal(line, []byte("---")) {
			return false
		}
	}
	return true
}

// kindOf names a JSON value's type for messages.
func kindOf(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := t.Int64(); err == nil {
			return "integer"
		}
		return "number"
	default:
		return fmt.Sprintf("%T", v)
	}
}

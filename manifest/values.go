package manifest

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ValuesOptions says how caller values are read.
type ValuesOptions struct {
	// AllowUnknown keeps values the schema does not name instead of
	// reporting them. Default: unknown names are an error.
	AllowUnknown bool
}

// Values returns the values a render uses: each variable's default,
// overridden by the caller's value. Where both are objects (env, labels,
// annotations) they are merged key by key, the caller winning. A key
// "a.b" that names no variable sets key "b" of variable "a", so
// {"env.FOO": "1"} adds FOO to env. Every value is checked against its
// schema (type, enum, minimum, maximum, required, unknown names) and every
// problem is reported at once, each with its path under "values".
func (t *Template) Values(in map[string]any, opts ValuesOptions) (map[string]any, error) {
	vs, err := t.values(in, opts)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(vs.props)+len(vs.given))
	for name, p := range vs.props {
		if p != nil && p.HasDefault {
			out[name] = p.Default
		}
	}
	maps.Copy(out, vs.given)
	return deepCopy(out).(map[string]any), nil
}

// valuesPath is where Values reports problems.
var valuesPath = field.NewPath("values")

// valueSet is what a render reads: the caller's values, merged with the
// defaults where both are objects, over the defaults themselves. Neither
// layer is copied: a Config is read-only.
type valueSet struct {
	given map[string]any
	props map[string]*Property
}

// get returns the value of variable name.
func (vs valueSet) get(name string) (any, bool) {
	if v, ok := vs.given[name]; ok {
		return v, true
	}
	if p := vs.props[name]; p != nil && p.HasDefault {
		return p.Default, true
	}
	return nil, false
}

// known reports whether a placeholder may name variable name: a declared
// variable, a given value or a base field of the job configuration (which
// is then simply missing, as in Prefect).
func (vs valueSet) known(name string) bool {
	if _, ok := vs.props[name]; ok {
		return true
	}
	if _, ok := vs.given[name]; ok {
		return true
	}
	_, base := configPaths[name]
	return base && name != "job_manifest"
}

// values checks in (see Values) and returns it layered over the defaults.
func (t *Template) values(in map[string]any, opts ValuesOptions) (valueSet, error) {
	root := valuesPath
	var errs field.ErrorList
	props := t.Variables.Properties
	vs := valueSet{given: make(map[string]any, len(in)), props: props}
	for _, key := range sortedKeys(in) {
		v, err := normalize(in[key])
		if err != nil {
			errs = append(errs, field.Invalid(root.Child(key), fmt.Sprintf("%T", in[key]), "not a JSON value: "+err.Error()))
			continue
		}
		name, sub := key, ""
		if _, ok := props[key]; !ok {
			if i := strings.IndexByte(key, '.'); i > 0 {
				name, sub = key[:i], key[i+1:]
			}
		}
		if _, ok := props[name]; !ok && !opts.AllowUnknown {
			errs = append(errs, field.Invalid(root.Child(name), in[key], "unknown variable; the template has: "+strings.Join(sortedKeys(props), ", ")))
			continue
		}
		old, _ := vs.get(name)
		if sub != "" {
			m, ok := old.(map[string]any)
			if !ok {
				m = map[string]any{}
			} else {
				m = shallowCopy(m)
			}
			m[sub] = v
			vs.given[name] = m
			continue
		}
		if om, ok := old.(map[string]any); ok && len(om) > 0 {
			if nv, ok := v.(map[string]any); ok {
				m := shallowCopy(om)
				maps.Copy(m, nv)
				vs.given[name] = m
				continue
			}
		}
		vs.given[name] = v
	}
	for _, name := range t.Variables.Required {
		if _, ok := vs.get(name); !ok {
			errs = append(errs, field.Required(root.Child(name), "the template requires it and it has no default"))
		}
	}
	for name, v := range vs.given {
		// Paths are built only for a value that breaks its schema.
		if p := props[name]; p != nil && len(checkValue(p, v, nil)) > 0 {
			errs = append(errs, checkValue(p, v, root.Child(name))...)
		}
	}
	if err := asError("values", sortErrors(errs)); err != nil {
		return valueSet{}, err
	}
	return vs, nil
}

// checkValue reports every way v breaks p. With a nil path it only says
// whether v does, building no paths.
func checkValue(p *Property, v any, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(p.AnyOf) > 0 {
		matched := false
		var kinds []string
		for _, alt := range p.AnyOf {
			if alt == nil {
				continue
			}
			if len(checkValue(alt, v, path)) == 0 {
				matched = true
				break
			}
			kinds = append(kinds, alt.describe())
		}
		if !matched {
			errs = append(errs, field.Invalid(path, v, "must be one of: "+strings.Join(kinds, ", ")))
		}
	}
	if len(p.Type) > 0 && !p.Type.admits(v) {
		errs = append(errs, field.TypeInvalid(path, v, fmt.Sprintf("must be %s, not %s", strings.Join(p.Type, " or "), kindOf(v))))
		return errs // the checks below assume the type
	}
	if len(p.Enum) > 0 && !inEnum(p.Enum, v) {
		errs = append(errs, field.NotSupported(path, v, enumStrings(p.Enum)))
	}
	if n, ok := v.(json.Number); ok {
		if f, ok := new(big.Float).SetString(n.String()); ok {
			if p.Minimum != nil && f.Cmp(big.NewFloat(*p.Minimum)) < 0 {
				errs = append(errs, field.Invalid(path, v, fmt.Sprintf("must be at least %v", *p.Minimum)))
			}
			if p.Maximum != nil && f.Cmp(big.NewFloat(*p.Maximum)) > 0 {
				errs = append(errs, field.Invalid(path, v, fmt.Sprintf("must be at most %v", *p.Maximum)))
			}
		}
	}
	if m, ok := v.(map[string]any); ok && p.AdditionalProperties != nil {
		for k, c := range m {
			var cp *field.Path
			if path != nil {
				cp = path.Child(k)
			}
			errs = append(errs, checkValue(p.AdditionalProperties, c, cp)...)
		}
	}
	return errs
}

// admits reports whether v is of one of the types.
func (t Types) admits(v any) bool {
	kind := kindOf(v)
	for _, want := range t {
		if want == kind || (want == "number" && kind == "integer") {
			return true
		}
		if want == "integer" && kind == "number" {
			// 2.0 is an integer in JSON Schema.
			if f, ok := new(big.Float).SetString(v.(json.Number).String()); ok && f.IsInt() {
				return true
			}
		}
	}
	return false
}

func (p *Property) describe() string {
	switch {
	case len(p.Type) > 0:
		return strings.Join(p.Type, " or ")
	case len(p.Enum) > 0:
		return "one of " + strings.Join(enumStrings(p.Enum), ", ")
	default:
		return "a schema"
	}
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		ne, err := normalize(e)
		if err == nil && (reflect.DeepEqual(ne, v) || sameNumber(ne, v)) {
			return true
		}
	}
	return false
}

func sameNumber(a, b any) bool {
	x, ok1 := a.(json.Number)
	y, ok2 := b.(json.Number)
	if !ok1 || !ok2 {
		return false
	}
	fx, ok1 := new(big.Float).SetString(x.String())
	fy, ok2 := new(big.Float).SetString(y.String())
	return ok1 && ok2 && fx.Cmp(fy) == 0
}

func enumStrings(enum []any) []string {
	out := make([]string, len(enum))
	for i, e := range enum {
		if s, ok := e.(string); ok {
			out[i] = s
		} else {
			b, _ := json.Marshal(e)
			out[i] = string(b)
		}
	}
	return out
}

// sortErrors orders errors by path, so that a list built from map
// iteration reads the same every time.
func sortErrors(errs field.ErrorList) field.ErrorList {
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].Field != errs[j].Field {
			return errs[i].Field < errs[j].Field
		}
		return errs[i].Error() < errs[j].Error()
	})
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shallowCopy(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

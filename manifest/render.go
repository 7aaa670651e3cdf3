package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// renderer substitutes placeholders in a tree of JSON values in one pass.
type renderer struct {
	values valueSet
	env    func(string) (string, bool)
	errs   field.ErrorList
	at     []step // where render is, turned into a field.Path only for errors
	root   *field.Path
	// allowUnknown and allowMissingEnv are RenderOptions'.
	allowUnknown, allowMissingEnv bool
}

// render returns a rendered copy of v and whether it is present: a string
// that is exactly one placeholder with a missing value is not, and neither
// is a null map entry, so the caller drops its map key or list item. Parts
// of v that hold no placeholder are shared, not copied (changed is false);
// v itself is never changed, and text taken from a value is never scanned
// again.
func (r *renderer) render(v any) (out any, present, changed bool) {
	switch t := v.(type) {
	case map[string]any:
		var m map[string]any // a copy, made at the first change
		for k, child := range t {
			r.at = append(r.at, step{key: k})
			rv, ok, ch := r.render(child)
			r.at = r.at[:len(r.at)-1]
			if ok && rv == nil {
				ok = false // in a manifest, null means unset
			}
			if ok && !ch {
				continue
			}
			if m == nil {
				m = shallowCopy(t)
			}
			if ok {
				m[k] = rv
			} else {
				delete(m, k)
			}
		}
		if m == nil {
			return t, true, false
		}
		return m, true, true
	case []any:
		var l []any // a copy, made at the first change
		for i, child := range t {
			r.at = append(r.at, step{index: i})
			rv, ok, ch := r.render(child)
			r.at = r.at[:len(r.at)-1]
			if l == nil && (!ok || ch) {
				l = append(make([]any, 0, len(t)), t[:i]...)
			}
			if l != nil && ok {
				l = append(l, rv)
			}
		}
		if l == nil {
			return t, true, false
		}
		return l, true, true
	case string:
		if !strings.Contains(t, "{{") {
			return t, true, false
		}
		rv, ok := r.renderString(t)
		return rv, ok, true
	default:
		return v, true, false
	}
}

// path is where render is, as a field.Path.
func (r *renderer) path() *field.Path {
	return stepsPath(r.root, r.at)
}

func (r *renderer) renderString(s string) (any, bool) {
	ps, err := findPlaceholders(s)
	if err != nil {
		r.errs = append(r.errs, field.Invalid(r.path(), s, err.Error()))
		return s, true
	}
	if len(ps) == 0 {
		return s, true
	}
	if len(ps) == 1 && ps[0].start == 0 && ps[0].end == len(s) {
		return r.lookup(ps[0].ref, s) // shared: a Config is read-only
	}
	var b strings.Builder
	last := 0
	for _, p := range ps {
		b.WriteString(s[last:p.start])
		if v, ok := r.lookup(p.ref, s); ok {
			text, err := asText(v)
			if err != nil {
				r.errs = append(r.errs, field.Invalid(r.path(), s, fmt.Sprintf("placeholder %q: %v", p.ref.name, err)))
			}
			b.WriteString(text)
		}
		last = p.end
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// lookup resolves a placeholder of s. A missing value is an error unless
// the placeholder names a variable, a value or a base field (then it is
// missing: its key is removed), or the options allow it; a missing
// "$NAME" reads as "" when allowed.
func (r *renderer) lookup(ref ref, s string) (any, bool) {
	if v, ok := ref.lookup(r.values, r.env); ok {
		return v, true
	}
	if ref.env != "" {
		if !r.allowMissingEnv {
			r.errs = append(r.errs, field.Invalid(r.path(), s, fmt.Sprintf("placeholder %q: environment variable %s is not set", ref.name, ref.env)))
		}
		return "", true
	}
	if name := ref.path[0].key; !r.allowUnknown && !r.values.known(name) {
		r.errs = append(r.errs, field.Invalid(r.path(), s, unknownPlaceholder(ref.name, r.values.props)))
	}
	return nil, false
}

// unknownPlaceholder says that a placeholder names nothing.
func unknownPlaceholder(name string, props map[string]*Property) string {
	known := "none"
	if len(props) > 0 {
		known = strings.Join(sortedKeys(props), ", ")
	}
	return fmt.Sprintf("placeholder %q names no variable (the template has: %s); declare it under variables, or render with AllowUnknownPlaceholders", name, known)
}

// asText is how a value reads inside a longer string: nil is "", booleans
// are true and false, numbers as written, maps and lists as compact JSON.
func asText(v any) (string, error) {
	switch t := v.(type) {
	case nil:
		return "", nil
	case string:
		return t, nil
	case bool:
		return strconv.FormatBool(t), nil
	case json.Number:
		return t.String(), nil
	default:
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(t); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	}
}

// deepCopy copies maps and lists so that rendered output never shares
// structure with the values it came from.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, c := range t {
			out[k] = deepCopy(c)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = deepCopy(c)
		}
		return out
	default:
		return v
	}
}

// normalize turns any Go value into the JSON tree this package works on:
// map[string]any, []any, string, bool, json.Number and nil.
func normalize(v any) (any, error) {
	switch t := v.(type) {
	case nil, string, bool, json.Number:
		return t, nil
	case int:
		return json.Number(strconv.FormatInt(int64(t), 10)), nil
	case int64:
		return json.Number(strconv.FormatInt(t, 10)), nil
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, c := range t {
			n, err := normalize(c)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(t))
		for k, c := range t {
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, c := range t {
			n, err := normalize(c)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case []string:
		out := make([]any, len(t))
		for i, c := range t {
			out[i] = c
		}
		return out, nil
	}
	// Anything else (structs, other numbers) goes the long way.
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(data)
}

// decodeJSON decodes one JSON document, keeping numbers as json.Number so
// that large integers survive.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	if len(bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n")) > 0 {
		return nil, fmt.Errorf("unexpected data after the first JSON value")
	}
	return out, nil
}

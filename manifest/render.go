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
	values map[string]any
	env    func(string) (string, bool)
	errs   field.ErrorList
}

// render returns a rendered copy of v and whether it is present: a string that
// is exactly one placeholder with a missing value is not, so the caller drops
// its map key or list item. v itself is never changed, and text taken from a
// value is never scanned again.
func (r *renderer) render(v any, path *field.Path) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, child := range t {
			if rv, ok := r.render(child, path.Child(k)); ok {
				out[k] = rv
			}
		}
		return out, true
	case []any:
		out := make([]any, 0, len(t))
		for i, child := range t {
			if rv, ok := r.render(child, path.Index(i)); ok {
				out = append(out, rv)
			}
		}
		return out, true
	case string:
		return r.renderString(t, path)
	default:
		return v, true
	}
}

func (r *renderer) renderString(s string, path *field.Path) (any, bool) {
	ps, err := findPlaceholders(s)
	if err != nil {
		r.errs = append(r.errs, field.Invalid(path, s, err.Error()))
		return s, true
	}
	if len(ps) == 0 {
		return s, true
	}
	if len(ps) == 1 && ps[0].start == 0 && ps[0].end == len(s) {
		v, ok := ps[0].ref.lookup(r.values, r.env)
		if !ok {
			return nil, false
		}
		return deepCopy(v), true
	}
	var b strings.Builder
	last := 0
	for _, p := range ps {
		b.WriteString(s[last:p.start])
		if v, ok := p.ref.lookup(r.values, r.env); ok {
			text, err := asText(v)
			if err != nil {
				r.errs = append(r.errs, field.Invalid(path, s, fmt.Sprintf("placeholder %q: %v", p.ref.name, err)))
			}
			b.WriteString(text)
		}
		last = p.end
	}
	b.WriteString(s[last:])
	return b.String(), true
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
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the first JSON value")
	}
	return out, nil
}

package manifest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// placeholder is one "{{ name }}" found in a string.
type placeholder struct {
	start, end int // byte offsets of "{{" and just past "}}"
	ref        ref
}

// ref is where a placeholder's value comes from: a path into the values, or
// an environment variable when the name starts with "$".
type ref struct {
	name string // as written, for messages
	env  string // variable name for "$NAME", else ""
	path []step // path into the values otherwise
}

// step is one step of a path: a map key, or a list index when key is "".
type step struct {
	key   string
	index int
}

// findPlaceholders returns the placeholders of s in order: "{{", optional
// space, a name of letters, digits and _ . - [ ] $, optional space, "}}".
// Every "{{" in s must start a well-formed placeholder: anything else is an
// error that says where, so a typo such as "{{ image }" is never sent to a
// cluster as text. A "{" just before a placeholder is text.
func findPlaceholders(s string) ([]placeholder, error) {
	var out []placeholder
	for i := 0; ; {
		j := strings.Index(s[i:], "{{")
		if j < 0 {
			return out, nil
		}
		start := i + j
		for start+2 < len(s) && s[start+2] == '{' {
			start++ // "{{{ x }}": the first brace is text
		}
		p := start + 2
		p = skipSpace(s, p)
		nameStart := p
		for p < len(s) {
			r, size := utf8.DecodeRuneInString(s[p:])
			if !isNameRune(r) {
				break
			}
			p += size
		}
		nameEnd := p
		p = skipSpace(s, p)
		if nameEnd == nameStart || !strings.HasPrefix(s[p:], "}}") {
			return nil, malformed(s, start)
		}
		r, err := parseRef(s[nameStart:nameEnd])
		if err != nil {
			return nil, fmt.Errorf("placeholder at offset %d: %w", start, err)
		}
		out = append(out, placeholder{start: start, end: p + 2, ref: r})
		i = p + 2
	}
}

func skipSpace(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}

func isNameRune(r rune) bool {
	switch r {
	case '_', '.', '-', '[', ']', '$':
		return true
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

func malformed(s string, at int) error {
	rest := s[at:]
	if len(rest) > 24 {
		rest = rest[:24] + "…"
	}
	if !strings.Contains(s[at:], "}}") {
		return fmt.Errorf("placeholder at offset %d never closes: %q", at, rest)
	}
	return fmt.Errorf("malformed placeholder at offset %d: %q (want {{ name }} with a name of letters, digits and _ . - [ ] $)", at, rest)
}

// pathRE is a variable name followed by any number of .key and [index].
var pathRE = regexp.MustCompile(`^[^.\[\]]+(?:\.[^.\[\]]+|\[[0-9]+\])*$`)

// parseRef parses a placeholder name: "$NAME", or a path such as a.b[0].c.
func parseRef(name string) (ref, error) {
	if strings.HasPrefix(name, "$") {
		if len(name) == 1 || strings.ContainsAny(name[1:], "$[].") {
			return ref{}, fmt.Errorf("bad environment placeholder %q: want $NAME", name)
		}
		return ref{name: name, env: name[1:]}, nil
	}
	if !pathRE.MatchString(name) {
		return ref{}, fmt.Errorf("bad name %q: want a variable name, then .key or [index]", name)
	}
	r := ref{name: name}
	for rest := name; rest != ""; {
		switch rest[0] {
		case '[':
			end := strings.IndexByte(rest, ']')
			n, err := strconv.Atoi(rest[1:end])
			if err != nil {
				return ref{}, fmt.Errorf("bad index in %q: %w", name, err)
			}
			r.path = append(r.path, step{index: n})
			rest = rest[end+1:]
		case '.':
			rest = rest[1:]
		default:
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			r.path = append(r.path, step{key: rest[:end]})
			rest = rest[end:]
		}
	}
	return r, nil
}

// lookup resolves r in values, or through env for "$NAME". The second result
// is false when the value is missing; a present nil is (nil, true).
func (r ref) lookup(values valueSet, env func(string) (string, bool)) (any, bool) {
	if r.env != "" {
		if env == nil {
			return nil, false
		}
		v, ok := env(r.env)
		return v, ok
	}
	if len(r.path) == 0 || r.path[0].key == "" {
		return nil, false
	}
	cur, ok := values.get(r.path[0].key)
	if !ok {
		return nil, false
	}
	for _, s := range r.path[1:] {
		switch c := cur.(type) {
		case map[string]any:
			if s.key == "" {
				return nil, false
			}
			v, ok := c[s.key]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if s.key != "" || s.index >= len(c) {
				return nil, false
			}
			cur = c[s.index]
		default:
			return nil, false
		}
	}
	return cur, true
}

package manifest

import "strings"

// orderEnv orders an env list so that every entry comes after the entries
// its value refers to with $(NAME), as the kubelet expands a reference only
// to a variable defined earlier in the list. Otherwise the order is kept:
// each place goes to the first entry, in the given order, whose references
// are all placed. Entries in a cycle keep their order (the kubelet leaves
// those references as text).
func orderEnv(list []any) []any {
	defined := make(map[string]bool, len(list))
	refs := make([][]string, len(list))
	anyRef := false
	for i, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		defined[name] = true
		if v, ok := m["value"].(string); ok {
			for _, r := range envRefs(v) {
				if r != name {
					refs[i] = append(refs[i], r)
					anyRef = true
				}
			}
		}
	}
	if !anyRef {
		return list
	}
	placed := make(map[string]bool, len(list))
	done := make([]bool, len(list))
	out := make([]any, 0, len(list))
	for len(out) < len(list) {
		next := -1
		for i := range list {
			if !done[i] && ready(refs[i], defined, placed) {
				next = i
				break
			}
		}
		if next < 0 { // a cycle: the rest as they are
			for i, e := range list {
				if !done[i] {
					out = append(out, e)
				}
			}
			break
		}
		done[next] = true
		name, _ := list[next].(map[string]any)["name"].(string)
		placed[name] = true
		out = append(out, list[next])
	}
	return out
}

// ready reports whether every reference to a defined name is placed.
func ready(refs []string, defined, placed map[string]bool) bool {
	for _, r := range refs {
		if defined[r] && !placed[r] {
			return false
		}
	}
	return true
}

// envRefs returns the names that s refers to as the kubelet reads them:
// $(NAME), with $$ an escaped "$".
func envRefs(s string) []string {
	var out []string
	for i := 0; i < len(s)-1; i++ {
		if s[i] != '$' {
			continue
		}
		switch s[i+1] {
		case '$':
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				return out
			}
			out = append(out, s[i+2:i+2+end])
			i += 2 + end
		}
	}
	return out
}

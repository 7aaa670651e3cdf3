package manifest

import "strings"

// orderEnv orders an env list so that every entry comes after the entries
// its value refers to with $(NAME), as the kubelet expands a reference only
// to a variable defined earlier in the list. Otherwise the order is kept:
// entries are placed in the given order, each just after what it refers to
// (depth first). References that form a cycle cannot all be met; the
// kubelet leaves those as text.
func orderEnv(list []any) []any {
	at := make(map[string]int, len(list))
	refs := make([][]string, len(list))
	anyRef := false
	for i, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		if _, dup := at[name]; !dup {
			at[name] = i
		}
		if v, ok := m["value"].(string); ok {
			refs[i] = envRefs(v)
			anyRef = anyRef || len(refs[i]) > 0
		}
	}
	if !anyRef {
		return list
	}
	const (
		todo = iota
		visiting
		placed
	)
	state := make([]int, len(list))
	out := make([]any, 0, len(list))
	var visit func(i int)
	visit = func(i int) {
		state[i] = visiting
		for _, r := range refs[i] {
			if j, ok := at[r]; ok && state[j] == todo {
				visit(j)
			}
		}
		state[i] = placed
		out = append(out, list[i])
	}
	for i := range list {
		if state[i] == todo {
			visit(i)
		}
	}
	return out
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

package manifest

import (
	"strconv"
	"strings"
)

// Customizations are applied to the manifest's tree directly when every
// operation is an add, replace or remove that succeeds on it: encoding the
// manifest, patching its JSON and decoding the result cost more than all
// the rest of Prepare. Anything else (move, copy, test, the whole
// document, empty keys, negative or malformed indices, a path that does
// not apply) goes to evanphx/json-patch, which then gives the answer and
// its errors.

// treeOp is one add, replace or remove of a customization patch.
type treeOp struct {
	op    string   // "add", "replace" or "remove"
	path  []string // unescaped JSON pointer tokens, at least one
	value any      // decoded, nulls in objects pruned; nil for remove
}

// treeOps returns the patch's operations if all can be applied to the tree,
// or false.
func treeOps(patch []byte) ([]treeOp, bool) {
	// Never a failure: a patch not for the tree is kept as nil.
	ops, _ := parsedPatches.get(string(patch), func(p string) ([]treeOp, error) { return parseTreeOps(p), nil })
	return ops, ops != nil
}

// parsedPatches keeps parsed patches (nil: not for the tree); a worker
// uses one or a few.
var parsedPatches = memo[[]treeOp]{max: 64, maxLen: 64 << 10}

// parseTreeOps parses a patch for the tree: nil if any operation is not
// for it.
func parseTreeOps(patch string) []treeOp {
	doc, err := decodeJSON([]byte(patch))
	if err != nil {
		return nil
	}
	list, ok := doc.([]any)
	if !ok {
		return nil
	}
	ops := make([]treeOp, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil
		}
		op, _ := m["op"].(string)
		path, _ := m["path"].(string)
		value, hasValue := m["value"]
		tokens, ok := pointerTokens(path)
		if !ok {
			return nil
		}
		switch {
		case op == "remove" && len(m) == 2:
		case (op == "add" || op == "replace") && hasValue && len(m) == 3:
			if value != nil {
				pruneNulls(value)
			}
		default:
			return nil
		}
		ops = append(ops, treeOp{op: op, path: tokens, value: value})
	}
	return ops
}

// pointerTokens splits a JSON pointer below the document: "/a/b~1c" gives
// a, b/c. The whole document (""), empty keys and bad escapes are refused.
func pointerTokens(p string) ([]string, bool) {
	if !strings.HasPrefix(p, "/") {
		return nil, false
	}
	tokens := strings.Split(p[1:], "/")
	for i, t := range tokens {
		if t == "" {
			return nil, false // json-patch reads empty keys its own way
		}
		if !strings.Contains(t, "~") {
			continue
		}
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, false
			}
		}
		tokens[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return tokens, true
}

// applyTreeOps applies ops to m without changing it or anything it holds:
// each container on an operation's path is copied. It returns false when
// an operation does not apply.
func applyTreeOps(m map[string]any, ops []treeOp) (map[string]any, bool) {
	var root any = m
	for _, op := range ops {
		var ok bool
		if root, ok = applyTreeOp(root, op.path, op); !ok {
			return nil, false
		}
	}
	return root.(map[string]any), true
}

// applyTreeOp returns a copy of node with op applied at path below it.
func applyTreeOp(node any, path []string, op treeOp) (any, bool) {
	tok, last := path[0], len(path) == 1
	switch t := node.(type) {
	case map[string]any:
		child, exists := t[tok]
		out := shallowCopy(t)
		switch {
		case !last:
			if !exists {
				return nil, false
			}
			c, ok := applyTreeOp(child, path[1:], op)
			if !ok {
				return nil, false
			}
			out[tok] = c
		case op.op == "add", op.op == "replace" && exists:
			if op.value == nil {
				delete(out, tok) // in a manifest, null means unset
			} else {
				out[tok] = op.value
			}
		case op.op == "remove" && exists:
			delete(out, tok)
		default:
			return nil, false
		}
		return out, true
	case []any:
		i, ok := arrayIndex(tok, len(t), last && op.op == "add")
		if !ok {
			return nil, false
		}
		switch {
		case !last:
			c, ok := applyTreeOp(t[i], path[1:], op)
			if !ok {
				return nil, false
			}
			out := append([]any(nil), t...)
			out[i] = c
			return out, true
		case op.op == "add":
			out := make([]any, 0, len(t)+1)
			out = append(append(append(out, t[:i]...), op.value), t[i:]...)
			return out, true
		case op.op == "replace":
			out := append([]any(nil), t...)
			out[i] = op.value
			return out, true
		default: // remove
			return append(append(make([]any, 0, len(t)-1), t[:i]...), t[i+1:]...), true
		}
	}
	return nil, false
}

// arrayIndex reads an array index token for a list of n items: a decimal
// without leading zeros below n, or up to n and "-" (for n) where an add
// may append.
func arrayIndex(tok string, n int, appending bool) (int, bool) {
	if tok == "-" {
		return n, appending
	}
	if tok == "" || len(tok) > 9 || (tok[0] == '0' && len(tok) > 1) || strings.Trim(tok, "0123456789") != "" {
		return 0, false
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i < 0 || i > n || (i == n && !appending) {
		return 0, false
	}
	return i, true
}

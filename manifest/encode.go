package manifest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends the JSON encoding of a tree of this package's values
// (map[string]any, []any, string, bool, json.Number, nil) to b. It is the
// hot path of Prepare: encoding/json would sort map keys through reflection.
// Key order is that of the map, which decoding does not care about.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch t := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, t), nil
	case bool:
		return strconv.AppendBool(b, t), nil
	case json.Number:
		if !json.Valid([]byte(t)) {
			return nil, fmt.Errorf("invalid number %q", string(t))
		}
		return append(b, t...), nil
	case map[string]any:
		b = append(b, '{')
		first := true
		for k, c := range t {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, c); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, c := range t {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, c); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	default:
		data, err := json.Marshal(v)
		return append(b, data...), err
	}
}

// appendString appends s as a JSON string. Plain printable ASCII is copied;
// anything else goes through encoding/json, which knows every escape.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainJSON[s[i]] {
			data, _ := json.Marshal(s) // a string always encodes
			return append(b, data...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON marks the bytes that appendString copies as they are.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

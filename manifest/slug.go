package manifest

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

// The Slugify functions follow the rules Prefect applies with python-slugify,
// then check the result with Kubernetes' own validators from
// k8s.io/apimachinery/pkg/api/validate/content, the non-deprecated home of
// validation.IsQualifiedName and validation.IsValidLabelValue.
//
// Folding to ASCII uses golang.org/x/text: NFKD, then nonspacing marks
// (Unicode category Mn) dropped, so "é" gives "e", "ﬁ" gives "fi" and "①"
// gives "1". Nothing is transliterated: a character with no ASCII
// decomposition ("Æ", "ø", "ł", other scripts, emoji) is a separator, and so
// is every invalid UTF-8 byte. Only SlugifyName, which lowercases anyway, also
// case-folds first, so "ß" gives "ss" there.
//
// As in python-slugify, a comma between two digits is dropped ("1,000" gives
// "1000") before separators are replaced; unlike it, HTML entities are not
// decoded.

// Length limits of the slugs.
const (
	// slugNameMaxLen leaves room for the 5 characters that the API server
	// appends to a generateName prefix.
	slugNameMaxLen        = 45
	slugLabelMaxLen       = content.LabelValueMaxLength // also a key's name part
	slugLabelPrefixMaxLen = content.DNS1123SubdomainMaxLength
)

// ErrNoSlug is wrapped by the error a Slugify function returns when its input
// has no ASCII letter or digit, once folded, to build a slug from. Callers
// then use a default (a Job name) or skip the label.
var ErrNoSlug = errors.New("no ASCII letter or digit to build a slug from")

// SlugifyName returns s as a prefix for a Job's generateName: folded to
// ASCII, lowercased, each run of characters other than a-z and 0-9 made one
// "-", trimmed of "-", and cut to 45 characters so that the API server's
// suffix fits. "My_Flow Run!!" gives "my-flow-run".
//
// The result always passes content.IsDNS1123Label (as
// validation.IsDNS1123Label), or an error is returned, wrapping ErrNoSlug
// when s has no letter or digit.
func SlugifyName(s string) (string, error) {
	folded := s
	if !isASCII(s) {
		folded = cases.Fold().String(s) // ASCII folds to lower case, which slugReplace does
	}
	slug := slugReplace(folded, slugNameByte, true, true)
	slug = slugCut(strings.Trim(slug, "-"), slugNameMaxLen, "-")
	if slug == "" {
		return "", fmt.Errorf("manifest: name %q: %w", s, ErrNoSlug)
	}
	if !dnsLabelOK(slug) {
		return "", slugInvalid("name", s, slug, content.IsDNS1123Label(slug))
	}
	return slug, nil
}

// SlugifyLabelKey returns s as a label or annotation key. s splits at its
// first "/" into an optional prefix and a name; a later "/" is part of the
// name. The name keeps its case: each run of characters other than A-Z, a-z,
// 0-9, "-", "_" and "." becomes "-", it is trimmed to start and end with a
// letter or digit, and cut to 63 characters. The prefix is lowercased into a
// DNS subdomain of at most 253 characters. "Example.COM/My Key" gives
// "example.com/My-Key".
//
// The result always passes content.IsLabelKey (validation.IsQualifiedName),
// or an error is returned; a valid key comes back unchanged. An empty name,
// or a prefix that leaves no slug (the empty one in "/x" too), gives an error
// wrapping ErrNoSlug: the prefix is never dropped, as the key would then
// merge with another.
func SlugifyLabelKey(s string) (string, error) {
	prefix, name, hasPrefix := strings.Cut(s, "/")
	if !hasPrefix {
		prefix, name = "", s
	}
	if name != "" && labelPartOK(name) && (!hasPrefix || dnsSubdomainOK(prefix)) {
		return s, nil // already valid: the common case, kept cheap
	}
	nameSlug := slugLabel(name)
	prefixSlug := ""
	if hasPrefix {
		prefixSlug = slugPrefix(prefix)
	}

	var missing []string
	if hasPrefix && prefixSlug == "" {
		missing = append(missing, fmt.Sprintf("prefix %q", prefix))
	}
	if nameSlug == "" {
		missing = append(missing, fmt.Sprintf("name %q", name))
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("manifest: label key %q: %s: %w", s, strings.Join(missing, " and "), ErrNoSlug)
	}

	slug := nameSlug
	if hasPrefix {
		slug = prefixSlug + "/" + nameSlug
	}
	if !labelPartOK(nameSlug) || (hasPrefix && !dnsSubdomainOK(prefixSlug)) {
		return "", slugInvalid("label key", s, slug, content.IsLabelKey(slug))
	}
	return slug, nil
}

// SlugifyLabelValue returns s as a label value, by the rules of a
// SlugifyLabelKey name: case kept, each run of characters other than A-Z,
// a-z, 0-9, "-", "_" and "." made one "-", trimmed to start and end with a
// letter or digit, and cut to 63 characters. An input with no letter or
// digit, such as "!!!", gives "", which is a valid label value.
//
// The result always passes content.IsLabelValue
// (validation.IsValidLabelValue), or an error is returned, which in practice
// never happens; a valid value comes back unchanged.
func SlugifyLabelValue(s string) (string, error) {
	if labelPartOK(s) {
		return s, nil // already valid: the common case, kept cheap
	}
	slug := slugLabel(s)
	if !labelPartOK(slug) {
		return "", slugInvalid("label value", s, slug, content.IsLabelValue(slug))
	}
	return slug, nil
}

// slugLabel is the slug of a label value or a label key's name part.
func slugLabel(s string) string {
	slug := slugReplace(s, slugLabelByte, false, false)
	return slugCut(strings.Trim(slug, "-_."), slugLabelMaxLen, "-_.")
}

// slugPrefix is the slug of a label key's prefix: a DNS-1123 subdomain.
func slugPrefix(s string) string {
	slug := slugReplace(s, slugPrefixByte, true, false)
	parts := strings.Split(slug, ".")
	kept := parts[:0]
	for _, p := range parts {
		if p = strings.Trim(p, "-"); p != "" {
			kept = append(kept, p)
		}
	}
	return slugCut(strings.Join(kept, "."), slugLabelPrefixMaxLen, "-.")
}

// slugReplace folds s to ASCII, drops every comma between two digits,
// optionally lowercases, and replaces each run of bytes that keep rejects by
// one "-". With collapse, runs of "-" already in s become one "-" too;
// without it they are kept unless they touch a replaced run, so that valid
// input passes through unchanged.
func slugReplace(s string, keep func(byte) bool, lower, collapse bool) string {
	// One byte per rune: ASCII as is, anything else (invalid bytes
	// included, as utf8.RuneError) as a space, which no charset keeps.
	folded := s
	if !isASCII(s) {
		folded = norm.NFKD.String(s)
	}
	ascii := make([]byte, 0, len(folded))
	for _, r := range folded {
		switch {
		case r < utf8.RuneSelf:
			ascii = append(ascii, byte(r))
		case unicode.Is(unicode.Mn, r):
			// An accent, split off its letter by NFKD.
		default:
			ascii = append(ascii, ' ')
		}
	}

	out := make([]byte, 0, len(ascii))
	replaced := false // out ends with a "-" that stands for a replaced run
	for i, c := range ascii {
		if c == ',' && i > 0 && i+1 < len(ascii) && slugDigit(ascii[i-1]) && slugDigit(ascii[i+1]) {
			continue
		}
		if lower && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch {
		case c == '-':
			if replaced || (collapse && len(out) > 0 && out[len(out)-1] == '-') {
				continue
			}
			out = append(out, c)
		case keep(c):
			out = append(out, c)
			replaced = false
		default:
			for len(out) > 0 && out[len(out)-1] == '-' {
				out = out[:len(out)-1]
			}
			out = append(out, '-')
			replaced = true
		}
	}
	return string(out)
}

// slugCut cuts s to limit bytes (s is ASCII) and trims the bytes in cutset
// that the cut may have left at its end.
func slugCut(s string, limit int, cutset string) string {
	if len(s) <= limit {
		return s
	}
	return strings.TrimRight(s[:limit], cutset)
}

// slugInvalid reports a slug that Kubernetes rejects. The rules above are
// meant to make this unreachable; the fuzz tests check that they do.
func slugInvalid(what, input, slug string, msgs []string) error {
	return fmt.Errorf("manifest: %s %q: slug %q is invalid: %w", what, input, slug, errors.New(strings.Join(msgs, "; ")))
}

// isASCII reports whether s is all ASCII, which folding and NFKD leave
// as it is.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func slugDigit(c byte) bool { return '0' <= c && c <= '9' }

func slugAlnum(c byte) bool {
	return slugDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func slugNameByte(c byte) bool   { return slugDigit(c) || ('a' <= c && c <= 'z') || c == '-' }
func slugPrefixByte(c byte) bool { return slugNameByte(c) || c == '.' }
func slugLabelByte(c byte) bool  { return slugAlnum(c) || c == '-' || c == '_' || c == '.' }

// labelPartOK reports whether s is a valid label value (or label key name):
// at most 63 of A-Z a-z 0-9 - _ ., starting and ending with a letter or
// digit, or empty.
func labelPartOK(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > slugLabelMaxLen || !slugAlnum(s[0]) || !slugAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !slugLabelByte(s[i]) {
			return false
		}
	}
	return true
}

// dnsSubdomainOK reports whether s is a DNS-1123 subdomain: at most 253
// characters, dot-separated parts of a-z 0-9 -, each starting and ending
// with a letter or digit.
func dnsSubdomainOK(s string) bool {
	if len(s) > 253 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if !dnsPartOK(part) {
			return false
		}
	}
	return true
}

// dnsLabelOK reports whether s is a DNS-1123 label: a part of a subdomain
// of at most 63 characters.
func dnsLabelOK(s string) bool { return len(s) <= 63 && dnsPartOK(s) }

func dnsPartOK(s string) bool {
	if s == "" || !slugLowerAlnum(s[0]) || !slugLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !slugNameByte(s[i]) {
			return false
		}
	}
	return true
}

func slugLowerAlnum(c byte) bool { return slugDigit(c) || ('a' <= c && c <= 'z') }

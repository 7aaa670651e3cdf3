package manifest

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mozillazg/go-unidecode"
	"golang.org/x/text/unicode/norm"
	"k8s.io/apimachinery/pkg/api/validate/content"
)

// The Slugify functions follow python-slugify as Prefect calls it, then
// check the result with Kubernetes' own validators from
// k8s.io/apimachinery/pkg/api/validate/content (the non-deprecated home of
// validation.IsQualifiedName and validation.IsValidLabelValue).
//
// Text is NFKD-normalized, then transliterated to ASCII by
// github.com/mozillazg/go-unidecode, whose tables match the text-unidecode
// that python-slugify uses: "Crème" gives "Creme", "Ελληνικά" "Ellenika",
// "Москва" "Moskva", "北京" "Bei Jing". As there, a character with no
// transliteration (emoji, most symbols) is dropped, and so is an apostrophe
// that transliteration gives ("’"); an invalid UTF-8 byte is a separator.
// A comma between two digits is dropped ("1,000" gives "1000"), every other
// run of characters outside a slug's charset becomes one "-", and runs of
// "-" become one. HTML entities are not decoded.
//
// Unlike Prefect: label key names and values keep their case; a key's
// prefix keeps its runs of "-", as in punycode's "xn--"; and an input that
// leaves no slug is an error wrapping ErrNoSlug, never "" or the input.

// Length limits of the slugs.
const (
	// slugNameMaxLen leaves room for the 5 characters that the API server
	// appends to a generateName prefix.
	slugNameMaxLen        = 45
	slugLabelMaxLen       = content.LabelValueMaxLength // also a key's name part
	slugLabelPrefixMaxLen = content.DNS1123SubdomainMaxLength
)

// ErrNoSlug is wrapped by the error a Slugify function returns when its input
// has no ASCII letter or digit, once transliterated, to build a slug from.
// Callers then use a default (a Job name) or report the label.
var ErrNoSlug = errors.New("no ASCII letter or digit to build a slug from")

// SlugifyName returns s as a prefix for a Job's generateName:
// transliterated to ASCII, lowercased, each run of characters other than
// a-z and 0-9 made one "-", trimmed of "-", and cut to 45 characters so that
// the API server's suffix fits. "My_Flow Run!!" gives "my-flow-run" and
// "Москва" gives "moskva".
//
// The result always passes content.IsDNS1123Label (as
// validation.IsDNS1123Label), or an error is returned, wrapping ErrNoSlug
// when s has no letter or digit.
func SlugifyName(s string) (string, error) {
	slug := slugReplace(s, slugNameByte, true, true)
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
// name. The name is transliterated to ASCII and keeps its case: each run of
// characters other than A-Z, a-z, 0-9, "-", "_" and "." becomes "-", runs of
// "-" become one, and it is cut to 63 characters and trimmed to start and
// end with a letter or digit. The prefix is lowercased into a DNS subdomain of at
// most 253 characters. "Example.COM/My Key" gives "example.com/My-Key" and
// "例え.com/キー" gives "li-e.com/ki".
//
// The result always passes content.IsLabelKey (validation.IsQualifiedName),
// or an error is returned; a valid key with no "--" in its name comes back
// unchanged. An empty name, or a prefix that leaves no slug (the empty one in
// "/x" too), gives an error wrapping ErrNoSlug: the prefix is never dropped,
// as the key would then merge with another.
func SlugifyLabelKey(s string) (string, error) {
	prefix, name, hasPrefix := strings.Cut(s, "/")
	if !hasPrefix {
		prefix, name = "", s
	}
	if name != "" && labelSlugOK(name) && (!hasPrefix || dnsSubdomainOK(prefix)) {
		return s, nil // already a slug: the common case, kept cheap
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
// SlugifyLabelKey name: transliterated to ASCII, case kept, each run of
// characters other than A-Z, a-z, 0-9, "-", "_" and "." made one "-", runs
// of "-" made one, cut to 63 characters and trimmed to start and end with a
// letter or digit. "Ελληνικά --- v1" gives "Ellenika-v1".
//
// The result always passes content.IsLabelValue
// (validation.IsValidLabelValue), or an error is returned; a valid value
// with no "--" comes back unchanged. "" is a valid value and stays "", but a
// value that leaves no slug, such as "!!!" or "🚀", gives an error wrapping
// ErrNoSlug.
func SlugifyLabelValue(s string) (string, error) {
	if labelSlugOK(s) {
		return s, nil // already a slug ("" too): the common case, kept cheap
	}
	slug := slugLabel(s)
	if slug == "" {
		return "", fmt.Errorf("manifest: label value %q: %w", s, ErrNoSlug)
	}
	if !labelPartOK(slug) {
		return "", slugInvalid("label value", s, slug, content.IsLabelValue(slug))
	}
	return slug, nil
}

// labelSlugOK reports whether s is a valid label value that slugLabel
// leaves as it is: one with no run of "-".
func labelSlugOK(s string) bool {
	return labelPartOK(s) && !strings.Contains(s, "--")
}

// slugLabel is the slug of a label value or a label key's name part. As in
// Prefect, only "-" is trimmed before the cut, so that a leading "_" or "."
// counts toward the 63 characters.
func slugLabel(s string) string {
	slug := slugReplace(s, slugLabelByte, false, true)
	return strings.Trim(slugCut(strings.Trim(slug, "-"), slugLabelMaxLen, "-"), "-_.")
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

// slugReplace transliterates s to ASCII, drops every comma between two
// digits, optionally lowercases, and replaces each run of bytes that keep
// rejects by one "-". With collapse, runs of "-" already in s become one
// "-" too; without it they are kept unless they touch a replaced run.
func slugReplace(s string, keep func(byte) bool, lower, collapse bool) string {
	ascii := slugASCII(s)
	out := make([]byte, 0, len(ascii))
	replaced := false // out ends with a "-" that stands for a replaced run
	for i := range len(ascii) {
		c := ascii[i]
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

// slugASCII returns s in ASCII as python-slugify makes it: NFKD, then each
// run of non-ASCII characters transliterated by unidecode, with the
// apostrophes that gives dropped. Each run of invalid UTF-8 bytes becomes a
// space, which no slug charset keeps.
func slugASCII(s string) string {
	if isASCII(s) {
		return s
	}
	s = norm.NFKD.String(strings.ToValidUTF8(s, " "))
	var b strings.Builder
	b.Grow(len(s))
	for s != "" {
		i := strings.IndexFunc(s, func(r rune) bool { return r >= utf8.RuneSelf })
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		j := strings.IndexFunc(s, func(r rune) bool { return r < utf8.RuneSelf })
		if j < 0 {
			j = len(s)
		}
		t := unidecode.Unidecode(s[:j])
		for k := range len(t) {
			switch c := t[k]; {
			case c == '\'':
			case c >= utf8.RuneSelf:
				b.WriteByte(' ') // not expected of unidecode's tables
			default:
				b.WriteByte(c)
			}
		}
		s = s[j:]
	}
	return b.String()
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

// isASCII reports whether s is all ASCII, which NFKD and transliteration
// leave as it is.
func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func slugDigit(c byte) bool { return '0' <= c && c <= '9' }

func slugNameByte(c byte) bool   { return slugDigit(c) || ('a' <= c && c <= 'z') || c == '-' }
func slugPrefixByte(c byte) bool { return slugNameByte(c) || c == '.' }
func slugLabelByte(c byte) bool {
	return slugNameByte(c) || ('A' <= c && c <= 'Z') || c == '_' || c == '.'
}

// labelPartOK reports whether s is a valid label value, and so a valid
// label key name: content.IsLabelValue (validation.IsValidLabelValue).
// "" is valid.
func labelPartOK(s string) bool { return len(content.IsLabelValue(s)) == 0 }

// dnsSubdomainOK reports whether s is a DNS-1123 subdomain:
// content.IsDNS1123Subdomain (validation.IsDNS1123Subdomain).
func dnsSubdomainOK(s string) bool { return len(content.IsDNS1123Subdomain(s)) == 0 }

// dnsLabelOK reports whether s is a DNS-1123 label:
// content.IsDNS1123Label (validation.IsDNS1123Label).
func dnsLabelOK(s string) bool { return len(content.IsDNS1123Label(s)) == 0 }

// dnsPartOK reports whether s is one part of a DNS-1123 subdomain: a
// subdomain with no dot.
func dnsPartOK(s string) bool { return !strings.Contains(s, ".") && dnsSubdomainOK(s) }

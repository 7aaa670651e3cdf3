package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// slugFuzzSeeds start every slug fuzz target: the table vectors' kinds of
// input, plus multi-byte, combining and invalid sequences.
var slugFuzzSeeds = []string{
	"", "-", "---", "/", "//", "My_Flow Run!!", "hello,world 1,000", "1,,0,0",
	"Crème brûlée", "Straße", "smørrebrød", "北京", "🚀 launch", "a\xffb\xc3",
	"Example.COM/My Key", "_bad_key_", "example.com/a/b", "a..-b-.c./key",
	"xn--bcher-kva.example/Key", "2025-02-13T16:30:44.632196+00:00",
	"ﬁle ① ＡＢＣ", "e\u0301\u0301\u0301", "İstanbul", "\u212a", "ß" + strings.Repeat("\u0300", 40),
	strings.Repeat("a", 62) + "-b", strings.Repeat("abcdefghij.", 24) + "/n",
}

// checkSlugError checks that err wraps ErrNoSlug and names the input: an
// error that only wraps a validation failure means the rules let through a
// slug that Kubernetes rejects.
func checkSlugError(t *testing.T, in string, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoSlug) {
		t.Fatalf("input %q: error does not wrap ErrNoSlug: %v", in, err)
	}
	if !strings.Contains(err.Error(), fmt.Sprintf("%q", in)) {
		t.Fatalf("input %q: error does not name it: %v", in, err)
	}
}

func FuzzSlugifyName(f *testing.F) {
	for _, s := range slugFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		slug, err := SlugifyName(in)
		if err != nil {
			checkSlugError(t, in, err)
			return
		}
		if msgs := content.IsDNS1123Label(slug); len(msgs) > 0 {
			t.Fatalf("SlugifyName(%q) = %q, invalid: %v", in, slug, msgs)
		}
		if len(slug) > slugNameMaxLen {
			t.Fatalf("SlugifyName(%q) = %q: %d characters, max %d", in, slug, len(slug), slugNameMaxLen)
		}
		if again, err := SlugifyName(slug); again != slug || err != nil {
			t.Fatalf("SlugifyName(%q) = %q, %v; not idempotent on %q", slug, again, err, in)
		}
	})
}

func FuzzSlugifyLabelKey(f *testing.F) {
	for _, s := range slugFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		slug, err := SlugifyLabelKey(in)
		if err != nil {
			checkSlugError(t, in, err)
			if len(content.IsLabelKey(in)) == 0 {
				t.Fatalf("SlugifyLabelKey(%q): error for a valid key: %v", in, err)
			}
			return
		}
		if msgs := content.IsLabelKey(slug); len(msgs) > 0 {
			t.Fatalf("SlugifyLabelKey(%q) = %q, invalid: %v", in, slug, msgs)
		}
		prefix, name, hasPrefix := strings.Cut(slug, "/")
		if !hasPrefix {
			prefix, name = "", slug
		}
		if len(prefix) > slugLabelPrefixMaxLen || len(name) > slugLabelMaxLen {
			t.Fatalf("SlugifyLabelKey(%q) = %q: prefix %d or name %d characters too long", in, slug, len(prefix), len(name))
		}
		if hasPrefix != strings.Contains(in, "/") {
			t.Fatalf("SlugifyLabelKey(%q) = %q: prefix added or dropped", in, slug)
		}
		if len(content.IsLabelKey(in)) == 0 && slug != in {
			t.Fatalf("SlugifyLabelKey(%q) = %q: a valid key changed", in, slug)
		}
		if again, err := SlugifyLabelKey(slug); again != slug || err != nil {
			t.Fatalf("SlugifyLabelKey(%q) = %q, %v; not idempotent on %q", slug, again, err, in)
		}
	})
}

func FuzzSlugifyLabelValue(f *testing.F) {
	for _, s := range slugFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		slug, err := SlugifyLabelValue(in)
		if err != nil {
			t.Fatalf("SlugifyLabelValue(%q): %v", in, err)
		}
		if msgs := content.IsLabelValue(slug); len(msgs) > 0 {
			t.Fatalf("SlugifyLabelValue(%q) = %q, invalid: %v", in, slug, msgs)
		}
		if len(slug) > slugLabelMaxLen {
			t.Fatalf("SlugifyLabelValue(%q) = %q: %d characters, max %d", in, slug, len(slug), slugLabelMaxLen)
		}
		if len(content.IsLabelValue(in)) == 0 && slug != in {
			t.Fatalf("SlugifyLabelValue(%q) = %q: a valid value changed", in, slug)
		}
		if again, err := SlugifyLabelValue(slug); again != slug || err != nil {
			t.Fatalf("SlugifyLabelValue(%q) = %q, %v; not idempotent on %q", slug, again, err, in)
		}
	})
}

// FuzzValidChecksAgreeWithKubernetes checks the hand-written checks that
// spare the hot path a regular expression against the validators they stand
// in for.
func FuzzValidChecksAgreeWithKubernetes(f *testing.F) {
	for _, s := range slugFuzzSeeds {
		f.Add(s)
	}
	for _, s := range []string{"a", "a.b", "a-b.c", "-a", "a-", "a_b", "A", "a..b", ".a", "0", strings.Repeat("a", 63), strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := labelPartOK(s), len(content.IsLabelValue(s)) == 0; got != want {
			t.Errorf("labelPartOK(%q) = %v, content.IsLabelValue says %v", s, got, want)
		}
		if got, want := dnsLabelOK(s), len(content.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("dnsLabelOK(%q) = %v, content.IsDNS1123Label says %v", s, got, want)
		}
		if got, want := dnsSubdomainOK(s), len(content.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("dnsSubdomainOK(%q) = %v, content.IsDNS1123Subdomain says %v", s, got, want)
		}
	})
}

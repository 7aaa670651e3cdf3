package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// slugFuzzSeeds start every slug fuzz target: the table vectors' kinds of
// input, plus other scripts, multi-byte, combining and invalid sequences.
var slugFuzzSeeds = []string{
	"", "-", "---", "/", "//", "My_Flow Run!!", "hello,world 1,000", "1,,0,0",
	"Crème brûlée", "Straße", "smørrebrød", "北京", "🚀 launch", "a\xffb\xc3",
	"Example.COM/My Key", "_bad_key_", "example.com/a/b", "a..-b-.c./key",
	"xn--bcher-kva.example/Key", "2025-02-13T16:30:44.632196+00:00",
	"ﬁle ① ＡＢＣ", "e\u0301\u0301\u0301", "İstanbul", "\u212a", "ß" + strings.Repeat("\u0300", 40),
	strings.Repeat("a", 62) + "-b", strings.Repeat("abcdefghij.", 24) + "/n",
	"Ελληνικά", "Москва", "مرحبا", "例え.com/キー", "a---b", "ex.io/a--b", "Don’t", "\ue000x\U0010ffff",
	"_" + strings.Repeat("Щ", 20), "Ελληνικά/Москва", "\u2014\u2014x\u2014",
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

// FuzzSlugifyName checks that every slug is a DNS-1123 label of at most 45
// characters with no run of dashes, a fixed point, or an ErrNoSlug error.
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
		if strings.Contains(slug, "--") {
			t.Fatalf("SlugifyName(%q) = %q: a run of dashes", in, slug)
		}
		if again, err := SlugifyName(slug); again != slug || err != nil {
			t.Fatalf("SlugifyName(%q) = %q, %v; not idempotent on %q", slug, again, err, in)
		}
	})
}

// FuzzSlugifyLabelKey checks that every slug is a label key that keeps its
// input's prefix, leaves a valid key with no run of dashes in its name as it
// is, and is a fixed point; or an ErrNoSlug error, never for a valid key.
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
		if strings.Contains(name, "--") {
			t.Fatalf("SlugifyLabelKey(%q) = %q: a run of dashes in the name", in, slug)
		}
		if hasPrefix != strings.Contains(in, "/") {
			t.Fatalf("SlugifyLabelKey(%q) = %q: prefix added or dropped", in, slug)
		}
		inName := in[strings.Index(in, "/")+1:] // all of in without a "/"
		if len(content.IsLabelKey(in)) == 0 && !strings.Contains(inName, "--") && slug != in {
			t.Fatalf("SlugifyLabelKey(%q) = %q: a valid key changed", in, slug)
		}
		if again, err := SlugifyLabelKey(slug); again != slug || err != nil {
			t.Fatalf("SlugifyLabelKey(%q) = %q, %v; not idempotent on %q", slug, again, err, in)
		}
	})
}

// FuzzSlugifyLabelValue checks that every slug is a label value with no run
// of dashes, "" only for "", that leaves a valid value with no run of dashes
// as it is, and is a fixed point; or an ErrNoSlug error, never for "".
func FuzzSlugifyLabelValue(f *testing.F) {
	for _, s := range slugFuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		slug, err := SlugifyLabelValue(in)
		if err != nil {
			checkSlugError(t, in, err)
			if in == "" {
				t.Fatalf("SlugifyLabelValue(%q): error for the empty value: %v", in, err)
			}
			return
		}
		if msgs := content.IsLabelValue(slug); len(msgs) > 0 {
			t.Fatalf("SlugifyLabelValue(%q) = %q, invalid: %v", in, slug, msgs)
		}
		if len(slug) > slugLabelMaxLen {
			t.Fatalf("SlugifyLabelValue(%q) = %q: %d characters, max %d", in, slug, len(slug), slugLabelMaxLen)
		}
		if slug == "" && in != "" {
			t.Fatalf("SlugifyLabelValue(%q) = \"\": a value dropped", in)
		}
		if strings.Contains(slug, "--") {
			t.Fatalf("SlugifyLabelValue(%q) = %q: a run of dashes", in, slug)
		}
		if len(content.IsLabelValue(in)) == 0 && !strings.Contains(in, "--") && slug != in {
			t.Fatalf("SlugifyLabelValue(%q) = %q: a valid value changed", in, slug)
		}
		if again, err := SlugifyLabelValue(slug); again != slug || err != nil {
			t.Fatalf("SlugifyLabelValue(%q) = %q, %v; not idempotent on %q", slug, again, err, in)
		}
	})
}

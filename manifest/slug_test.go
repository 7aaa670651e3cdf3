package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// slugCase is one row of the slug tables: want is the slug, or noSlug says
// that the call must fail with an error wrapping ErrNoSlug.
type slugCase struct {
	name   string
	in     string
	want   string
	noSlug bool
}

// runSlugCases runs cases through slugify and checks every successful result
// with valid, the Kubernetes validator it promises to pass.
func runSlugCases(t *testing.T, cases []slugCase, slugify func(string) (string, error), valid func(string) []string, maxLen int) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := slugify(tc.in)
			if tc.noSlug {
				if !errors.Is(err, ErrNoSlug) {
					t.Fatalf("slugify(%q) = %q, %v; want an error wrapping ErrNoSlug", tc.in, got, err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.in)) {
					t.Errorf("error %q does not name the input %q", err, tc.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("slugify(%q): unexpected error %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("slugify(%q) = %q; want %q", tc.in, got, tc.want)
			}
			if msgs := valid(got); len(msgs) > 0 {
				t.Errorf("slugify(%q) = %q, which Kubernetes rejects: %v", tc.in, got, msgs)
			}
			if len(got) > maxLen {
				t.Errorf("slugify(%q) = %q has %d characters; max %d", tc.in, got, len(got), maxLen)
			}
		})
	}
}

func TestSlugifyName(t *testing.T) {
	a := strings.Repeat("a", 45)
	runSlugCases(t, []slugCase{
		{name: "lowercases and replaces runs of other characters by one dash", in: "My_Flow Run!!", want: "my-flow-run"},
		{name: "only dashes has no slug", in: "---", noSlug: true},
		{name: "empty input has no slug", in: "", noSlug: true},
		{name: "only punctuation and spaces has no slug", in: " !@#$%^&*() ", noSlug: true},
		{name: "drops a comma between two digits as a thousands separator", in: "hello,world 1,000", want: "hello-world-1000"},
		{name: "drops every thousands separator in a number", in: "1,000,000", want: "1000000"},
		{name: "comma not between two digits is a separator", in: "1,,000 1, 0 a,1", want: "1-000-1-0-a-1"},
		{name: "trailing comma after a digit is trimmed", in: "run 1,", want: "run-1"},
		{name: "folds accents to ASCII", in: "Crème brûlée", want: "creme-brulee"},
		{name: "folds compatibility characters", in: "ﬁle ① ＡＢＣ x²", want: "file-1-abc-x2"},
		{name: "transliterates sharp s to ss", in: "Straße", want: "strasse"},
		{name: "transliterates letters with no decomposition", in: "smørrebrød Æble Łódź", want: "smorrebrod-aeble-lodz"},
		{name: "transliterates Greek", in: "Ελληνικά", want: "ellenika"},
		{name: "transliterates Cyrillic", in: "Москва", want: "moskva"},
		{name: "transliterates Chinese", in: "北京", want: "bei-jing"},
		{name: "transliterates Japanese", in: "こんにちは", want: "konnichiha"},
		{name: "transliterates Korean", in: "한국어", want: "hangugeo"},
		{name: "transliterates Arabic", in: "مرحبا", want: "mrhb"},
		{name: "transliterates mixed scripts", in: "Flow Москва 北京 run", want: "flow-moskva-bei-jing-run"},
		{name: "drops a thousands separator after transliteration", in: "Привет, мир 1,000", want: "privet-mir-1000"},
		{name: "drops a typographic apostrophe, as python-slugify does", in: "Don’t stop", want: "dont-stop"},
		{name: "an ASCII apostrophe is a separator", in: "Don't stop", want: "don-t-stop"},
		{name: "emoji are dropped", in: "🚀 launch🔥pad", want: "launchpad"},
		{name: "emoji alone have no slug", in: "🚀🔥", noSlug: true},
		{name: "invalid UTF-8 bytes are separators", in: "a\xffb\xc3", want: "a-b"},
		{name: "collapses dashes already in the input", in: "a---b", want: "a-b"},
		{name: "a dash next to a replaced run merges into it", in: "a - b", want: "a-b"},
		{name: "trims dashes at both ends", in: "-a-", want: "a"},
		{name: "dots and underscores are separators", in: "my.flow_run", want: "my-flow-run"},
		{name: "digits only is a valid slug", in: "2025", want: "2025"},
		{name: "keeps exactly 45 characters", in: a, want: a},
		{name: "cuts at 45 characters", in: a + "bcdef", want: a},
		{name: "cut landing on a separator trims it", in: a[:44] + " b", want: a[:44]},
		{name: "a run of separators counts as one character toward the limit", in: a[:43] + "!!b", want: a[:43] + "-b"},
		{name: "cut landing on a replaced run trims it", in: a[:44] + "!!b", want: a[:44]},
		{name: "leading separators do not count toward the limit", in: "!!!" + a, want: a},
		{name: "cuts at 45 characters after transliteration", in: strings.Repeat("Ж", 40), want: strings.Repeat("zh", 22) + "z"},
		{name: "cut after transliteration landing on a separator trims it", in: strings.Repeat("北", 15), want: strings.Repeat("bei-", 11) + "b"},
	}, SlugifyName, content.IsDNS1123Label, slugNameMaxLen)
}

func TestSlugifyLabelKey(t *testing.T) {
	n63 := strings.Repeat("N", 63)
	// 23 parts of 10 letters plus a dot make 253 characters, so the cut
	// at 253 lands on a dot.
	prefix253 := strings.Repeat("abcdefghij.", 23)
	runSlugCases(t, []slugCase{
		{name: "trims non-alphanumerics from both ends of the name", in: "_bad_key_", want: "bad_key"},
		{name: "lowercases the prefix and keeps the name's case", in: "Example.COM/My Key", want: "example.com/My-Key"},
		{name: "keeps a valid key unchanged", in: "app.kubernetes.io/managed-by", want: "app.kubernetes.io/managed-by"},
		{name: "keeps a valid key without prefix unchanged", in: "My_Key.v1", want: "My_Key.v1"},
		{name: "keeps a punycode prefix with its double dash", in: "xn--bcher-kva.example/Key", want: "xn--bcher-kva.example/Key"},
		{name: "second slash is in the name part and becomes a dash", in: "example.com/a/b", want: "example.com/a-b"},
		{name: "replaces underscores in the prefix", in: "my_org.io/key", want: "my-org.io/key"},
		{name: "drops empty prefix parts and dashes next to dots", in: "a..-b-.c./key", want: "a.b.c/key"},
		{name: "folds accents in prefix and name", in: "Crème.io/Brûlée", want: "creme.io/Brulee"},
		{name: "drops a thousands separator in the name", in: "count 1,000", want: "count-1000"},
		{name: "invalid UTF-8 in the name is a separator", in: "ex.io/ke\xffy\xfe", want: "ex.io/ke-y"},
		{name: "emoji in the prefix are dropped", in: "🚀ex🚀.io/k", want: "ex.io/k"},
		{name: "transliterates prefix and name", in: "例え.com/キー", want: "li-e.com/ki"},
		{name: "transliterates a prefix into lower case and keeps the name's case", in: "Ελληνικά/Москва", want: "ellenika/Moskva"},
		{name: "transliterates a key without prefix", in: "北京", want: "Bei-Jing"},
		{name: "collapses dashes in the name", in: "a---b", want: "a-b"},
		{name: "collapses dashes in the name of an otherwise valid key", in: "example.com/a--b", want: "example.com/a-b"},
		{name: "keeps runs of underscores and dots in the name, as python-slugify does", in: "a__b..c", want: "a__b..c"},
		{name: "trims separators at both ends of prefix and name", in: "-.ex.io.-/-_key_-", want: "ex.io/key"},
		{name: "cuts the name at 63 characters after transliteration", in: "p.io/" + strings.Repeat("Ж", 40), want: "p.io/" + strings.Repeat("Zh", 31) + "Z"},
		{name: "keeps a name of exactly 63 characters", in: "p.io/" + n63, want: "p.io/" + n63},
		{name: "cuts the name at 63 characters", in: n63 + "MORE", want: n63},
		{name: "name cut landing on a separator trims it", in: "p.io/" + n63[:62] + "_x", want: "p.io/" + n63[:62]},
		{name: "keeps a prefix of exactly 253 characters", in: prefix253[:252] + "k/n", want: prefix253[:252] + "k/n"},
		{name: "prefix cut landing on a dot trims it", in: prefix253 + "more/n", want: prefix253[:252] + "/n"},
		{name: "empty key has no slug", in: "", noSlug: true},
		{name: "name of only separators has no slug", in: "example.com/!!!", noSlug: true},
		{name: "empty name after the slash has no slug", in: "example.com/", noSlug: true},
		{name: "prefix that vanishes is an error, not dropped", in: "!!!/name", noSlug: true},
		{name: "empty prefix before the slash is an error", in: "/name", noSlug: true},
		{name: "a lone slash has no slug", in: "/", noSlug: true},
		{name: "prefix of only dots has no slug", in: ".../name", noSlug: true},
		{name: "prefix of only emoji has no slug", in: "🚀/name", noSlug: true},
		{name: "name of only emoji has no slug", in: "ex.io/🚀", noSlug: true},
	}, SlugifyLabelKey, content.IsLabelKey, slugLabelPrefixMaxLen+1+slugLabelMaxLen)
}

func TestSlugifyLabelValue(t *testing.T) {
	a63 := strings.Repeat("a", 63)
	runSlugCases(t, []slugCase{
		{name: "replaces colons and plus signs in a timestamp", in: "2025-02-13T16:30:44.632196+00:00", want: "2025-02-13T16-30-44.632196-00-00"},
		{name: "cut at 63 landing on a dash trims it", in: a63[:62] + "-b", want: a63[:62]},
		{name: "cut at 63 landing on an underscore trims it", in: a63[:62] + "_b", want: a63[:62]},
		{name: "keeps exactly 63 characters", in: a63, want: a63},
		{name: "cuts at 63 characters", in: a63 + "bbb", want: a63},
		{name: "cuts at 63 characters after transliteration", in: strings.Repeat("Щ", 20), want: strings.Repeat("Shch", 15) + "Shc"},
		{name: "a leading underscore counts toward the limit, as in Prefect", in: "_" + a63, want: a63[:62]},
		{name: "empty input is the empty value", in: "", want: ""},
		{name: "only separators have no slug", in: "!!!", noSlug: true},
		{name: "only dashes have no slug", in: "---", noSlug: true},
		{name: "only invalid UTF-8 has no slug", in: "\xff\xfe", noSlug: true},
		{name: "only emoji have no slug", in: "🚀🔥", noSlug: true},
		{name: "keeps case, dots and underscores", in: "My_Value.v1", want: "My_Value.v1"},
		{name: "keeps runs of underscores and dots, as python-slugify does", in: "a__b..c", want: "a__b..c"},
		{name: "collapses a double dash in an otherwise valid value", in: "a--b", want: "a-b"},
		{name: "collapses a run of dashes", in: "a---b", want: "a-b"},
		{name: "a dash next to a replaced run merges into it", in: "a -- b", want: "a-b"},
		{name: "trims non-alphanumerics at both ends", in: "_.-x-._", want: "x"},
		{name: "trims separators left by transliteration", in: "  Москва  ", want: "Moskva"},
		{name: "drops a comma between two digits", in: "hello,world 1,000", want: "hello-world-1000"},
		{name: "folds accents and keeps case", in: "Crème Brûlée", want: "Creme-Brulee"},
		{name: "transliterates Greek and keeps case", in: "Ελληνικά --- v1", want: "Ellenika-v1"},
		{name: "transliterates Cyrillic", in: "Москва", want: "Moskva"},
		{name: "transliterates Chinese", in: "北京", want: "Bei-Jing"},
		{name: "transliterates Arabic", in: "مرحبا", want: "mrHb"},
		{name: "transliterates mixed scripts", in: "Flow Москва 北京 run", want: "Flow-Moskva-Bei-Jing-run"},
		{name: "emoji are dropped", in: "🚀 ok", want: "ok"},
		{name: "a slash is a separator", in: "a/b", want: "a-b"},
	}, SlugifyLabelValue, content.IsLabelValue, slugLabelMaxLen)
}

func TestSlugErrorsNameTheInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		slugify func(string) (string, error)
		in      string
		want    string
	}{
		{"name", SlugifyName, "---", `manifest: name "---": no ASCII letter or digit to build a slug from`},
		{"label key with empty name", SlugifyLabelKey, "ex.io/!", `manifest: label key "ex.io/!": name "!": no ASCII letter or digit to build a slug from`},
		{"label key with empty prefix", SlugifyLabelKey, "_/x", `manifest: label key "_/x": prefix "_": no ASCII letter or digit to build a slug from`},
		{"label key with both parts empty", SlugifyLabelKey, "/", `manifest: label key "/": prefix "" and name "": no ASCII letter or digit to build a slug from`},
		{"label value", SlugifyLabelValue, "🚀", `manifest: label value "🚀": no ASCII letter or digit to build a slug from`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.slugify(tc.in)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error = %v; want %s", err, tc.want)
			}
		})
	}
}

func TestDNSPartOK(t *testing.T) {
	for in, want := range map[string]bool{"a": true, "a-0": true, "": false, "a.b": false, "-a": false, "a-": false, "A": false, "a_b": false} {
		if got := dnsPartOK(in); got != want {
			t.Errorf("dnsPartOK(%q) = %v; want %v", in, got, want)
		}
	}
}

package manifest_test

import (
	"errors"
	"fmt"

	"github.com/kubeworker/kubeworker/manifest"
)

func ExampleSlugifyName() {
	for _, s := range []string{"My_Flow Run!!", "Crème brûlée 1,000", "Ελληνικά", "北京 run", "🚀"} {
		slug, err := manifest.SlugifyName(s)
		if errors.Is(err, manifest.ErrNoSlug) {
			fmt.Printf("%q: no slug, use a default prefix\n", s)
			continue
		}
		fmt.Printf("%q -> %q\n", s, slug)
	}
	// Output:
	// "My_Flow Run!!" -> "my-flow-run"
	// "Crème brûlée 1,000" -> "creme-brulee-1000"
	// "Ελληνικά" -> "ellenika"
	// "北京 run" -> "bei-jing-run"
	// "🚀": no slug, use a default prefix
}

func ExampleSlugifyLabelKey() {
	for _, s := range []string{"Example.COM/My Key", "例え.com/キー", "_bad---key_", "!!!/key"} {
		slug, err := manifest.SlugifyLabelKey(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%q -> %q\n", s, slug)
	}
	// Output:
	// "Example.COM/My Key" -> "example.com/My-Key"
	// "例え.com/キー" -> "li-e.com/ki"
	// "_bad---key_" -> "bad-key"
	// manifest: label key "!!!/key": prefix "!!!": no ASCII letter or digit to build a slug from
}

func ExampleSlugifyLabelValue() {
	for _, s := range []string{"2025-02-13T16:30:44.632196+00:00", "Москва --- v1", "", "🚀"} {
		slug, err := manifest.SlugifyLabelValue(s)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%q -> %q\n", s, slug)
	}
	// Output:
	// "2025-02-13T16:30:44.632196+00:00" -> "2025-02-13T16-30-44.632196-00-00"
	// "Москва --- v1" -> "Moskva-v1"
	// "" -> ""
	// manifest: label value "🚀": no ASCII letter or digit to build a slug from
}

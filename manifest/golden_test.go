package manifest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.output.yaml")

// goldenCase is one testdata/golden/NAME.input.yaml.
type goldenCase struct {
	// Template is a template file under testdata, or "" for Default.
	Template string `json:"template"`
	JobFile  bool   `json:"jobFile"`
	// Lenient loads and renders with AllowUnknownPlaceholders and
	// AllowMissingEnv, as Prefect does.
	Lenient bool           `json:"lenient"`
	Values  map[string]any `json:"values"`
	Env     map[string]string
	Run     Run            `json:"run"`
	Options PrepareOptions `json:"options"`
}

// TestGolden renders and prepares each input and compares the Job, or the
// error, with NAME.output.yaml. Run with -update to rewrite the outputs.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.input.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.yaml")
		t.Run(name, func(t *testing.T) {
			got := runGolden(t, in)
			out := strings.TrimSuffix(in, ".input.yaml") + ".output.yaml"
			if *update {
				if err := os.WriteFile(out, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", out, diff)
			}
		})
	}
}

func runGolden(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tmpl := Default()
	if c.Template != "" {
		src, err := os.ReadFile(filepath.Join("testdata", c.Template))
		if err != nil {
			t.Fatal(err)
		}
		if c.JobFile {
			tmpl, err = LoadJob(src)
		} else {
			tmpl, err = LoadWithOptions(src, LoadOptions{AllowUnknownPlaceholders: c.Lenient})
		}
		if err != nil {
			return []byte("error: " + err.Error() + "\n")
		}
	}
	lookup := func(k string) (string, bool) { v, ok := c.Env[k]; return v, ok }
	cfg, err := tmpl.Render(c.Values, RenderOptions{LookupEnv: lookup, AllowUnknownPlaceholders: c.Lenient, AllowMissingEnv: c.Lenient})
	if err != nil {
		return []byte("error: " + err.Error() + "\n")
	}
	job, err := cfg.Prepare(c.Run, c.Options)
	if err != nil {
		return []byte("error: " + err.Error() + "\n")
	}
	out, err := JobYAML(job)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

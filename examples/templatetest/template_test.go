package templatetest

import (
	"flag"
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs; got:\n%s", path, got)
	}
}

func render(t *testing.T, values map[string]any) ([]byte, error) {
	t.Helper()
	tmpl, err := manifest.Load(Template)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tmpl.Render(values, manifest.RenderOptions{})
	if err != nil {
		return nil, err
	}
	job, err := cfg.Prepare(manifest.Run{ID: "test-run", Name: "nightly training"}, manifest.PrepareOptions{Container: "train"})
	if err != nil {
		return nil, err
	}
	return manifest.JobYAML(job)
}

func TestTemplateDefaults(t *testing.T) {
	out, err := render(t, map[string]any{"image": "registry.example.com/train:2.1"})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "defaults.golden.yaml", out)
}

func TestTemplateAllValues(t *testing.T) {
	out, err := render(t, map[string]any{
		"image": "registry.example.com/train:2.1", "gpu": "h100", "memory_gib": 80,
		"deadline_seconds": 3600, "command": []string{"python", "train.py", "--epochs=3"},
		"env.WANDB_MODE": "offline", "labels.cost-center": "ml-42",
	})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "all-values.golden.yaml", out)
}

func TestTemplateRejectsBadValues(t *testing.T) {
	_, err := render(t, map[string]any{"image": "x", "gpu": "t4", "memory_gib": 0})
	if err == nil {
		t.Fatal("a t4 GPU and 0 GiB were accepted")
	}
	golden(t, "bad-values.golden.txt", []byte(err.Error()+"\n"))
}

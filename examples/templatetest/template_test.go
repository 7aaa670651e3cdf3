package templatetest

import (
	"testing"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/manifest/manifesttest"
)

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
	return manifesttest.JobYAML(job) // no version label: goldens survive upgrades
}

func TestTemplateDefaults(t *testing.T) {
	out, err := render(t, map[string]any{"image": "registry.example.com/train:2.1"})
	if err != nil {
		t.Fatal(err)
	}
	manifesttest.Golden(t, "testdata/defaults.golden.yaml", out)
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
	manifesttest.Golden(t, "testdata/all-values.golden.yaml", out)
}

func TestTemplateRejectsBadValues(t *testing.T) {
	_, err := render(t, map[string]any{"image": "x", "gpu": "t4", "memory_gib": 0})
	if err == nil {
		t.Fatal("a t4 GPU and 0 GiB were accepted")
	}
	manifesttest.Golden(t, "testdata/bad-values.golden.txt", []byte(err.Error()+"\n"))
}

package manifesttest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/manifest/manifesttest"
)

func defaultJobYAML(t *testing.T) []byte {
	t.Helper()
	cfg, err := manifest.Default().Render(map[string]any{"image": "example.com/etl:1"}, manifest.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cfg.Prepare(manifest.Run{ID: "r-1", Name: "nightly"}, manifest.PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := manifesttest.JobYAML(job)
	if err != nil {
		t.Fatal(err)
	}
	if job.Labels[manifest.LabelVersion] == "" {
		t.Error("JobYAML changed the Job it was given")
	}
	return out
}

func TestJobYAMLLeavesOutTheVersion(t *testing.T) {
	out := string(defaultJobYAML(t))
	if strings.Contains(out, manifest.LabelVersion) {
		t.Errorf("the version label is in the output:\n%s", out)
	}
	if !strings.Contains(out, manifest.LabelRunID+": r-1") {
		t.Errorf("the run label is missing:\n%s", out)
	}
}

func TestGoldenWritesThenCompares(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "job.yaml")
	got := defaultJobYAML(t)
	t.Setenv(manifesttest.UpdateEnv, "1")
	manifesttest.Golden(t, path, got)
	if data, err := os.ReadFile(path); err != nil || string(data) != string(got) {
		t.Fatalf("not written: %v", err)
	}
	t.Setenv(manifesttest.UpdateEnv, "")
	manifesttest.Golden(t, path, got)

	ft := &fakeT{TB: t}
	manifesttest.Golden(ft, path, append(got, "extra: 1\n"...))
	if !ft.failed || !strings.Contains(ft.msg, "extra: 1") {
		t.Errorf("a difference was not reported with a diff: %q", ft.msg)
	}
}

// fakeT records a failure instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
}

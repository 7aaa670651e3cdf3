package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeworker/kubeworker/manifest"
)

// TestRenderPrintsTheJobOrTheErrors runs the example's command path: stdout
// gets the Job YAML; bad values fail with every problem named.
func TestRenderPrintsTheJobOrTheErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	err = run("", false, "", map[string]any{"image": "busybox:stable", "command": "echo hi"}, manifest.Run{ID: "r1", Name: "demo"}, "")
	os.Stdout = stdout
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(out)
	for _, want := range []string{"kind: Job", "generateName: demo-", "- echo", "image: busybox:stable"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("output lacks %q:\n%s", want, data)
		}
	}
	err = run("", false, "", map[string]any{"backoff_limit": -1, "bogus": 1}, manifest.Run{ID: "r1"}, "")
	if err == nil || !strings.Contains(err.Error(), "values.backoff_limit") || !strings.Contains(err.Error(), "values.bogus") {
		t.Errorf("got %v, want both problems named", err)
	}
}

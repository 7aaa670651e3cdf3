// Package manifesttest helps a team golden-test its own kubeworker
// template without a cluster: encode the Job a template gives with
// [JobYAML], which leaves out what changes with every kubeworker upgrade,
// and compare it with a file in testdata with [Golden].
//
// Rewrite the golden files after an intended change with
//
//	KUBEWORKER_UPDATE_GOLDEN=1 go test ./...
//
// or with go test -update if the test package defines an "update" flag.
package manifesttest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"

	"github.com/kubeworker/kubeworker/manifest"
)

// UpdateEnv is the environment variable that makes Golden rewrite its
// files when set to 1 or true.
const UpdateEnv = "KUBEWORKER_UPDATE_GOLDEN"

// JobYAML encodes job as manifest.JobYAML does, without the
// kubeworker.io/version label on the Job and its pod template, so that a
// golden file does not change on every kubeworker upgrade. job is not
// changed.
func JobYAML(job *batchv1.Job) ([]byte, error) {
	if job == nil {
		return nil, fmt.Errorf("manifesttest: JobYAML of a nil Job")
	}
	j := job.DeepCopy()
	delete(j.Labels, manifest.LabelVersion)
	delete(j.Spec.Template.Labels, manifest.LabelVersion)
	return manifest.JobYAML(j)
}

// Golden compares got with the file at path (relative to the test's
// package directory, such as "testdata/nightly.yaml") and reports a diff
// through t. When updating (see UpdateEnv), it writes got to the file
// instead, creating its directory.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if updating() {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("manifesttest: %v", err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("manifesttest: %v", err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("manifesttest: %v (set %s=1 to create it)", err, UpdateEnv)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (-want +got; set %s=1 to accept):\n%s", path, UpdateEnv, cmp.Diff(string(want), string(got)))
	}
}

func updating() bool {
	switch strings.ToLower(os.Getenv(UpdateEnv)) {
	case "1", "true":
		return true
	}
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

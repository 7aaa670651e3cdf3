package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/internal/testcluster"
	"github.com/kubeworker/kubeworker/jobwatch"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(testcluster.Main(m, &cluster, testcluster.Options{}))
}

// TestSchedulerRunsTheSampleQueue runs the example as a user would, on the
// local cluster, and checks every run's outcome.
func TestSchedulerRunsTheSampleQueue(t *testing.T) {
	dir := t.TempDir()
	if err := writeSampleQueue(dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results, err := run(t.Context(), cluster.Config(), dir, cluster.NewNamespace(t), 2, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		outcome jobwatch.Outcome
		exit    int
	}{
		"hello": {jobwatch.Succeeded, 0}, "fails": {jobwatch.Failed, 3}, "oom": {jobwatch.OOMKilled, 137},
		"slow": {jobwatch.Succeeded, 0}, "evicted": {jobwatch.Evicted, 137},
	}
	for id, w := range want {
		got, ok := results[id]
		if !ok {
			t.Errorf("run %s has no result", id)
			continue
		}
		if got.Outcome != w.outcome || got.ExitCode != w.exit {
			t.Errorf("run %s: %v exit %d, want %v exit %d", id, got.Outcome, got.ExitCode, w.outcome, w.exit)
		}
	}
}

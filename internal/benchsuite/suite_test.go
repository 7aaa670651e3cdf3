package benchsuite

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kubeworker/kubeworker/clustertest"
)

// cluster is the real control plane the smoke test uses.
var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	ChildMain()
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{WatchCache: true}))
}

// TestSuiteSmoke runs the whole suite small, so that it cannot rot: every
// figure is produced and every run ends as scripted. Its times mean
// nothing and are not checked.
func TestSuiteSmoke(t *testing.T) {
	rep, err := Run(t.Context(), cluster, Options{Sizes: []int{10, 20}, SubmitJobs: 10, SubmitRounds: 1, Concurrency: 4, RunTime: 3 * time.Second, Overload: 30})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Prepare, err = measurePrepare(3, 50); err != nil {
		t.Fatal(err)
	}
	if len(rep.Submit) != 3 || len(rep.Scale) != 2 {
		t.Fatalf("%d submission and %d scale figures, want 3 and 2", len(rep.Submit), len(rep.Scale))
	}
	for _, s := range rep.Submit {
		if s.Raw <= 0 || s.Worker <= 0 || s.Ratio <= 0 || s.ControlPlaneCores <= 0 || s.Plane[rawLoop] <= 0 || s.Client[workerRuns] <= 0 {
			t.Errorf("submission at %g QPS (isolated: %v) lacks a figure: %+v", s.QPS, s.Isolated, s)
		}
		if s.Isolated && (s.Watched <= 0 || s.WatchedRatio <= 0) {
			t.Errorf("isolated submission at %g QPS has no watched raw loop: %+v", s.QPS, s)
		}
	}
	// The bindings are undone: the control plane and this process may
	// run on every CPU again.
	for _, pid := range append(cluster.PIDs(), os.Getpid()) {
		assertUnpinned(t, pid)
	}
	for _, s := range rep.Scale {
		for _, w := range s.Wrong {
			t.Errorf("%d runs: %s", s.Runs, w)
		}
		// One Job watch and one pod watch for the namespace, whatever
		// the number of runs.
		if s.WatchesOpen != 2 || s.APIServerWatches != 2 {
			t.Errorf("%d runs: %d watches open (API server +%.0f), want 2", s.Runs, s.WatchesOpen, s.APIServerWatches)
		}
		if s.ClientRequests < int64(s.Runs) || s.APIServerRequests < float64(s.Runs) {
			t.Errorf("%d runs: %d client requests, API server +%.0f; want at least a create per run", s.Runs, s.ClientRequests, s.APIServerRequests)
		}
		if s.Timed != s.Runs {
			t.Errorf("%d runs: %d timed from their pod's end to Run's return", s.Runs, s.Timed)
		}
	}
	if o := rep.Overload; o == nil || o.Seats <= 0 || o.Dispatched <= 0 || o.ClientRequests < int64(o.Runs) {
		t.Errorf("no overload figures: %+v", o)
	} else {
		for _, w := range o.Wrong {
			t.Errorf("overload: %s", w)
		}
		if o.APIServerJobLists > 3 {
			t.Errorf("overload: %.0f namespaced LISTs of Jobs, want the shared stream's only", o.APIServerJobLists)
		}
	}
	for _, s := range rep.Scale {
		if s.APIServerJobLists > 3 {
			t.Errorf("%d runs: %.0f namespaced LISTs of Jobs, want the shared stream's only", s.Runs, s.APIServerJobLists)
		}
	}
	if rep.Prepare.Ratio <= 0 || rep.Prepare.WallRatio <= 0 || rep.Prepare.RenderPrepare <= 0 || rep.Prepare.StrictDecode <= 0 {
		t.Errorf("no render+prepare figure: %+v", rep.Prepare)
	}
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte("# Benchmarks\n\nProse that stays.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second write replaces the first table
		if err := UpdateFile(path, rep, "go test ./internal/benchsuite"); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.Contains(text, "Prose that stays.") || strings.Count(text, beginMarker) != 1 || strings.Count(text, "| submission of") != 3 {
		t.Errorf("BENCHMARKS.md after two writes:\n%s", text)
	}
	t.Logf("\n%s", text)
}

// assertUnpinned fails t unless every thread of process pid may run on
// every CPU.
func assertUnpinned(t *testing.T, pid int) {
	t.Helper()
	want := "0"
	if n := runtime.NumCPU(); n > 1 {
		want = fmt.Sprintf("0-%d", n-1)
	}
	threads, err := clustertest.ThreadCPUs(pid)
	if err != nil {
		t.Fatal(err)
	}
	for tid, got := range threads {
		if got != want {
			t.Errorf("thread %s of process %d may run on CPUs %s after the suite, want %s", tid, pid, got, want)
		}
	}
}

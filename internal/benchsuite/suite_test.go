package benchsuite

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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

// TestClustersSmoke runs the many-clusters measurement small, a second
// cluster and all: every run ends in the cluster it was sent to, and the
// Worker holds two watches per namespace in each cluster.
func TestClustersSmoke(t *testing.T) {
	defer func(d time.Duration) { closeSettle = d }(closeSettle)
	closeSettle = time.Second
	rep, err := Run(t.Context(), cluster, Options{Only: []string{"clusters"}, Clusters: 10})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Clusters
	if c == nil || len(c.Ways) != 3 || len(rep.Scale) != 0 || len(rep.Submit) != 0 || rep.Overload != nil {
		t.Fatalf("a report of the many-clusters measurement alone: %+v", rep)
	}
	for i, want := range []struct {
		way     string
		watches []int64
		jobs    []int
	}{
		{wayOne, []int64{2}, []int{10}},
		{wayOptions, []int64{2, 2}, []int{5, 5}},
		{wayRunConfig, []int64{2, -1}, []int{5, 5}},
	} {
		w := c.Ways[i]
		for _, wrong := range w.Wrong {
			t.Errorf("%s: %s", w.Way, wrong)
		}
		if w.Way != want.way || !slices.Equal(w.WatchesOpen, want.watches) || !slices.Equal(w.Jobs, want.jobs) {
			t.Errorf("way %d: %s, %v watches open, %v Jobs; want %s, %v, %v", i, w.Way, w.WatchesOpen, w.Jobs, want.way, want.watches, want.jobs)
		}
		for j, n := range w.APIServerWatches {
			if n != 2 {
				t.Errorf("%s: cluster %d's API server serves %.0f more namespaced watches, want 2", w.Way, j+1, n)
			}
		}
		if w.RequestsPerRun() < 1 || w.Took <= 0 {
			t.Errorf("%s: %.3f API requests per run in %s", w.Way, w.RequestsPerRun(), w.Took)
		}
	}
	if c.SecondStart <= 0 || c.Elapsed <= c.SecondStart {
		t.Errorf("the second cluster started in %s, the whole in %s", c.SecondStart, c.Elapsed)
	}
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

var update = flag.Bool("update", false, "rewrite testdata/*.golden.md")

// clustersReport is a many-clusters report with made-up figures, each way
// as the measurement fills it.
func clustersReport() *Report {
	return &Report{
		Machine: "2 CPUs, linux/amd64, go1.26",
		Started: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
		Clusters: &Clusters{Runs: 1000, SecondStart: 6120 * time.Millisecond, Elapsed: 4*time.Minute + 31*time.Second, Ways: []ClusterWay{
			{Way: wayOne, Runs: 1000, Clusters: 1, Took: 61 * time.Second,
				WatchesOpen: []int64{2}, APIServerWatches: []float64{2},
				ClientRequests: 1004, APIServerRequests: []float64{2010}, ClientRequestKinds: map[string]int64{"create jobs 201": 1000, "watch jobs 200": 2, "watch pods 200": 2},
				HeapRan: 9.5 * 1024, HeapClosed: 0.2 * 1024, HeapSettled: 0.1 * 1024, Settle: 20 * time.Second, Jobs: []int{1000}, Results: map[string]int{"a": 1000}},
			{Way: wayOptions, Runs: 1000, Clusters: 2, Took: 48 * time.Second,
				WatchesOpen: []int64{2, 2}, APIServerWatches: []float64{2, 2},
				ClientRequests: 1010, APIServerRequests: []float64{1005, 1006}, ClientRequestKinds: map[string]int64{"create jobs 201": 1000, "get jobs 200": 10},
				HeapRan: 10 * 1024, HeapClosed: 0.3 * 1024, HeapSettled: 0.3 * 1024, Settle: 20 * time.Second, Jobs: []int{500, 500}, Results: map[string]int{"a": 500, "b": 500}},
			{Way: wayRunConfig, Runs: 1000, Clusters: 2, Took: 50 * time.Second,
				WatchesOpen: []int64{2, -1}, APIServerWatches: []float64{2, 2},
				ClientRequests: 503, APIServerRequests: []float64{1005, 1011}, ClientRequestKinds: map[string]int64{"create jobs 201": 500},
				HeapRan: 10.5 * 1024, HeapClosed: 9 * 1024, HeapSettled: -0.1 * 1024, Settle: 20 * time.Second, Jobs: []int{500, 499}, Results: map[string]int{"a": 500, "0b6f2c1e-uid": 499},
				Wrong: []string{"run 7: context deadline exceeded", "cluster 2 of 2 holds 499 Jobs, want 500"}},
		}},
	}
}

func TestWriteTableClustersGolden(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, clustersReport(), "go run ./internal/benchsuite/cmd/bench -only clusters -clusters 1000"); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "clusters.golden.md")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("WriteTable of a many-clusters report differs from %s (go test -run WriteTableClustersGolden -update rewrites it); got:\n%s", golden, b.String())
	}
}

func TestWriteTableClusters(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, clustersReport(), "CMD"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"with `CMD`",
		"(the second cluster started in 6.1s, warm, and was stopped after)",
		"| figure | expected | one cluster | two clusters, Options.Clusters | two clusters, each run's cluster_config |\n|---|---|---|---|---|\n",
		"| **2** | **4** (2 + 2) | **2 + not counted** (",
		"| +2 | +2, +2 | +2, +2 |",
		"| **2.010** | **2.011** (1005 + 1006 requests; ×1.00 one cluster's) |",
		"| 1.004 | 1.010; besides a create per run: get jobs 200 ×10 | 1.006 per run in the own cluster, whose client alone is counted |",
		"| 1000: 1000 \"a\" | 1000: 500 \"a\", 500 \"b\" | 1000: 500 \"a\", 499 its UID |",
		"| **9.5 KiB** | **10.0 KiB** (×1.05 one cluster's) |",
		"| Worker heap per run as soon as Close returned | ≈ 0 | 0.2 KiB (0.2 MiB in all) | 0.3 KiB (0.3 MiB in all) | 9.0 KiB (8.8 MiB in all) |",
		"| Worker heap per run 20s after Close | ≈ 0 | 0.1 KiB (0.1 MiB in all) | 0.3 KiB (0.3 MiB in all) | -0.1 KiB (-0.1 MiB in all) |",
		"| 1m1s | 48s (×0.79 one cluster's) |",
		"| 1000 | 500 + 500 | 500 + 499 |",
		"2 problems, two clusters, each run's cluster_config; the first:\n\n- run 7: context deadline exceeded\n- cluster 2 of 2 holds 499 Jobs, want 500\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| submission of") || strings.Contains(out, "render+prepare") {
		t.Errorf("a report of the many-clusters measurement alone has rows of the suite's table:\n%s", out)
	}
}

func TestUpdateFileReplacesOnlyTheTablesMeasured(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	old := "# Benchmarks\n\nProse.\n\n" + beginMarker + "\nold suite table\n" + endMarker + "\n\nMore prose.\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	// The many-clusters table alone: the suite's stays, and the new one
	// goes at the end, once however often it is written.
	for range 2 {
		if err := UpdateFile(path, clustersReport(), "CMD"); err != nil {
			t.Fatal(err)
		}
	}
	text := read()
	if !strings.HasPrefix(text, old) || strings.Count(text, clustersBeginMarker) != 1 || strings.Count(text, clustersEndMarker) != 1 ||
		!strings.HasSuffix(text, clustersEndMarker+"\n") || !strings.Contains(text, "| figure | expected | one cluster |") {
		t.Fatalf("after writing the many-clusters table:\n%s", text)
	}

	// The suite's table alone: the many-clusters one stays.
	suite := &Report{Machine: "m", Scale: []Scale{{Runs: 10, WatchesOpen: 2, APIServerWatches: 2}}}
	if err := UpdateFile(path, suite, "CMD2"); err != nil {
		t.Fatal(err)
	}
	text = read()
	if strings.Contains(text, "old suite table") || !strings.Contains(text, "| watch connections open, 10 concurrent runs |") ||
		!strings.Contains(text, "More prose.") || !strings.Contains(text, "| figure | expected | one cluster |") || strings.Count(text, beginMarker) != 1 {
		t.Fatalf("after writing the suite's table:\n%s", text)
	}
	if i, j := strings.Index(text, "| figure | expected | one cluster |"), strings.Index(text, clustersBeginMarker); i < j {
		t.Errorf("the many-clusters table is outside its markers:\n%s", text)
	}

	// A missing file gets a title and the table.
	fresh := filepath.Join(t.TempDir(), "NEW.md")
	if err := UpdateFile(fresh, clustersReport(), "CMD"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "# Benchmarks\n\n"+clustersBeginMarker+"\n") || strings.Contains(string(data), beginMarker) {
		t.Errorf("a new file:\n%s", data)
	}
}

func TestOptionsOnly(t *testing.T) {
	if err := (Options{Only: []string{"clusters", "prepare"}}).Check(); err != nil {
		t.Errorf("known names refused: %v", err)
	}
	err := (Options{Only: []string{"clusters", "clusterz", "sizes"}}).Check()
	if err == nil || !strings.Contains(err.Error(), `unknown "clusterz", "sizes"`) {
		t.Errorf("unknown names: %v", err)
	}
	o := Options{Only: []string{"clusters"}}
	if !o.Takes("clusters") || o.Takes("scale") || o.Takes("prepare") {
		t.Errorf("Only clusters takes clusters alone")
	}
	if !(Options{}).Takes("scale") {
		t.Errorf("no Only takes every measurement")
	}
}

func TestRunsAreSentEvenly(t *testing.T) {
	for _, tc := range []struct{ runs, clusters int }{{1000, 1}, {1000, 2}, {5, 2}, {7, 3}, {1, 2}} {
		got := make([]int, tc.clusters)
		for i := range tc.runs {
			got[sendsTo(i, tc.clusters)]++
		}
		for c := range tc.clusters {
			if want := runsIn(tc.runs, tc.clusters, c); got[c] != want {
				t.Errorf("%d runs over %d clusters: cluster %d gets %d, runsIn says %d", tc.runs, tc.clusters, c, got[c], want)
			}
		}
	}
}

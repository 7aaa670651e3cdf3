package benchsuite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKueueSmoke runs the Kueue measurement small, on the suite's
// cluster with Kueue started: every run Succeeded through a queue that
// held most of them back, the Worker held one Workload watch beside its
// Job and pod ones, and every run's admission was timed both ways.
func TestKueueSmoke(t *testing.T) {
	rep, err := Run(t.Context(), cluster, Options{Only: []string{"kueue"}, Kueue: 10, KueueQuota: 2})
	if err != nil {
		t.Fatal(err)
	}
	k := rep.Kueue
	if k == nil || len(rep.Scale) != 0 || len(rep.Submit) != 0 || rep.Overload != nil || rep.Clusters != nil {
		t.Fatalf("a report of the Kueue measurement alone: %+v", rep)
	}
	for _, w := range k.Wrong {
		t.Errorf("%s", w)
	}
	if k.Runs != 10 || k.Quota != 2 || k.Outcomes["Succeeded"] != 10 {
		t.Errorf("%d runs, quota %d, outcomes %v; want 10 Succeeded, quota 2", k.Runs, k.Quota, k.Outcomes)
	}
	// Two at a time, each pod 1-2 s: the last runs wait several seconds.
	if k.Waited == 0 || k.WaitedMax < 2*time.Second || k.QueuedMax < 2*time.Second {
		t.Errorf("%d runs waited, at most %s (%s by the child's clock); want the queue to hold runs back", k.Waited, k.WaitedMax, k.QueuedMax)
	}
	if k.PeakReserving < 1 || k.PeakReserving > 2 || k.AdmissionsPerSecond <= 0 {
		t.Errorf("at most %d Workloads held quota at once (quota 2); %.1f admissions/s", k.PeakReserving, k.AdmissionsPerSecond)
	}
	if k.HeldP50 <= 0 || k.HeldMax < k.HeldP50 {
		t.Errorf("runs held quota p50 %s, at most %s", k.HeldP50, k.HeldMax)
	}
	if k.WatchesOpen != 3 {
		t.Errorf("the Worker held %d watches, want 3: Jobs, pods, Workloads", k.WatchesOpen)
	}
	for _, r := range []string{"jobs", "pods", "workloads"} {
		if k.APIServerWatches[r] != 1 {
			t.Errorf("the API server serves %.0f more namespaced watches of %s, want 1", k.APIServerWatches[r], r)
		}
	}
	if k.Timed != 10 || k.AdmissionMax < k.AdmissionP50 || k.AdmissionMin > k.AdmissionP50 {
		t.Errorf("%d admissions timed: min %s, p50 %s, max %s", k.Timed, k.AdmissionMin, k.AdmissionP50, k.AdmissionMax)
	}
	if k.ClientRequests < 10 || k.APIServerRequests["POST jobs"] != 10 || k.APIServerRequestsPerRun() < 1 {
		t.Errorf("%d client requests, API server %v; want a create per run", k.ClientRequests, k.APIServerRequests)
	}
	if k.Took <= 0 || k.KueueStart <= 0 || k.Elapsed < k.Took {
		t.Errorf("took %s, Kueue's start %s, in all %s", k.Took, k.KueueStart, k.Elapsed)
	}
	var b strings.Builder
	if err := WriteTable(&b, rep, "CMD"); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", b.String())
}

// kueueReport is a Kueue report with made-up figures.
func kueueReport() *Report {
	return &Report{
		Machine: "2 CPUs, linux/amd64, go1.26",
		Started: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
		Kueue: &Kueue{Runs: 1000, Quota: 100, KueueStart: 3140 * time.Millisecond, Took: 41*time.Second + 300*time.Millisecond, Elapsed: 52 * time.Second,
			PeakReserving: 100, AdmissionsPerSecond: 26.04, HeldP50: 3 * time.Second, HeldMax: 9 * time.Second, StartP50: time.Second,
			Outcomes: map[string]int{"Succeeded": 998, "NeverStarted": 1, "error": 1},
			Waited:   905, WaitedP50: 17 * time.Second, WaitedMax: 38 * time.Second, QueuedP50: 16800 * time.Millisecond, QueuedMax: 37900 * time.Millisecond,
			WatchesOpen: 3, APIServerWatches: map[string]float64{"jobs": 1, "pods": 1, "workloads": 1},
			ClientRequests: 1006, ClientRequestKinds: map[string]int64{"create jobs 201": 1000, "watch jobs 200": 2, "watch jobs 0": 1, "watch pods 200": 1, "list workloads 200": 1, "watch workloads 200": 2},
			APIServerRequests: map[string]float64{"POST jobs": 1000, "PATCH jobs": 1000, "CONNECT pods/log": 998, "LIST workloads": 1, "WATCH workloads": 1, "LIST jobs": 1, "WATCH jobs": 1, "LIST pods": 1, "WATCH pods": 1},
			AdmissionP50:      2100 * time.Microsecond, AdmissionP99: 48 * time.Millisecond, AdmissionMax: 212 * time.Millisecond, AdmissionMin: -3400 * time.Microsecond,
			Timed: 998, Negative: 12, HeapRan: 12.3 * 1024,
			Wrong: []string{"run 7: context deadline exceeded", "run 9 (uid:ns:job-9): NeverStarted, exit code -1"},
		},
	}
}

func TestWriteTableKueueGolden(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, kueueReport(), "go run ./internal/benchsuite/cmd/bench -only kueue -kueue 1000"); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "kueue.golden.md")
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
		t.Errorf("WriteTable of a Kueue report differs from %s (go test -run WriteTableKueueGolden -update rewrites it); got:\n%s", golden, b.String())
	}
}

func TestWriteTableKueue(t *testing.T) {
	var b strings.Builder
	if err := WriteTable(&b, kueueReport(), "CMD"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"in 52s (Kueue started and its queue made in 3.1s, warm), with `CMD`.",
		"| figure | expected | measured |\n|---|---|---|\n",
		"quota for 100 at once (1 CPU each), pods running 1–2 s, by outcome | 1000 Succeeded | **998 Succeeded, 1 NeverStarted, 1 error** |",
		"| about 900 of 1000 | **905** of 1000; p50 17.0 s, max 38.0 s (by the child's clock, Job created → a raw watch sees it admitted, every run: p50 16.8 s, max 37.9 s) |",
		"| 3 per namespace: Jobs, pods, Workloads | **3** (opened: jobs 3, pods 1, workloads 2) |",
		"| 100: the quota holds runs back | **100** |",
		"| a little over the pod's 1–2 s | p50 **3.0 s**, max 9.0 s; admitted → started p50 1.0 s |",
		"| +1 each | jobs +1, pods +1, workloads **+1** |",
		"| **3.004** (PATCH jobs 1000, POST jobs 1000, CONNECT pods/log 998, LIST jobs 1, LIST pods 1, LIST workloads 1, WATCH jobs 1, WATCH pods 1, WATCH workloads 1) |",
		"| 1.006 |",
		"| p50 **2.1 ms**, p99 **48 ms**, max **212 ms** (min -3.4 ms; 998 of 1000 runs timed, 12 below zero: the sink first) |",
		"| **12.3 KiB** |",
		"| ≥ 10 rounds of the quota × 1–2 s | 41.3s (Kueue admitted 26.0 runs/s, first admission to last, as the raw watch saw them) |",
		"2 problems; the first:\n\n- run 7: context deadline exceeded\n- run 9",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| submission of") || strings.Contains(out, "| one cluster |") {
		t.Errorf("a report of the Kueue measurement alone has rows of the other tables:\n%s", out)
	}
}

func TestUpdateFileWritesTheKueueTableAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	old := "# Benchmarks\n\n" + beginMarker + "\nsuite\n" + endMarker + "\n\n" + clustersBeginMarker + "\nclusters\n" + clustersEndMarker + "\n\n## Kueue\n\n" +
		kueueBeginMarker + "\nold kueue table\n" + kueueEndMarker + "\n\nAfter.\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := UpdateFile(path, kueueReport(), "CMD"); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if !strings.Contains(text, "\nsuite\n") || !strings.Contains(text, "\nclusters\n") || strings.Contains(text, "old kueue table") ||
		strings.Count(text, kueueBeginMarker) != 1 || !strings.HasSuffix(text, kueueEndMarker+"\n\nAfter.\n") ||
		strings.Index(text, "## Kueue") > strings.Index(text, "| figure | expected | measured |") {
		t.Errorf("after writing the Kueue table:\n%s", text)
	}
}

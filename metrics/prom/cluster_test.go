package prom_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

// recordAll calls every method of rec once.
func recordAll(rec metrics.Recorder) {
	rec.RunStarted()
	rec.RunFinished("Succeeded")
	rec.RunStarted()
	rec.CreateAttempt(true)
	rec.WatchRestart("jobs")
	rec.Relist("pods", true)
	rec.LogReconnect()
	rec.PodStartLatency(2 * time.Second)
	rec.ResultLatency(time.Second)
	rec.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)
	rec.AdmissionWait(time.Minute, false)
	rec.AdmissionWait(time.Minute, true)
	rec.Preempted()
	rec.Requeued()
	rec.QueueWaitStarted()
}

func TestClustersRecordDistinctSeries(t *testing.T) {
	rec, reg := newRecorder(t)
	recordAll(metrics.ForCluster(rec, "east"))
	west := metrics.ForCluster(rec, "west")
	recordAll(west)
	west.RunStarted()
	west.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)

	want := `
# HELP kubeworker_api_requests_total API requests made, by Kubernetes verb, resource[/subresource] and HTTP status code (error: no answer).
# TYPE kubeworker_api_requests_total counter
kubeworker_api_requests_total{cluster="east",code="201",resource="jobs",verb="create"} 1
kubeworker_api_requests_total{cluster="west",code="201",resource="jobs",verb="create"} 2
# HELP kubeworker_runs_in_flight Runs started and not yet finished.
# TYPE kubeworker_runs_in_flight gauge
kubeworker_runs_in_flight{cluster=""} 0
kubeworker_runs_in_flight{cluster="east"} 1
kubeworker_runs_in_flight{cluster="west"} 2
# HELP kubeworker_runs_finished_total Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).
# TYPE kubeworker_runs_finished_total counter
kubeworker_runs_finished_total{cluster="east",outcome="Succeeded"} 1
kubeworker_runs_finished_total{cluster="west",outcome="Succeeded"} 1
# HELP kubeworker_watch_relists_total Times a shared watch stream read every object again after its first sync; reason expired: after 410 Gone.
# TYPE kubeworker_watch_relists_total counter
kubeworker_watch_relists_total{cluster="east",reason="expired",resource="pods"} 1
kubeworker_watch_relists_total{cluster="west",reason="expired",resource="pods"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubeworker_api_requests_total",
		"kubeworker_runs_in_flight", "kubeworker_runs_finished_total", "kubeworker_watch_relists_total"); err != nil {
		t.Error(err)
	}
	// Every metric has a series per cluster: "", east and west.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		clusters := map[string]bool{}
		for _, m := range f.GetMetric() {
			if l := m.GetLabel(); len(l) > 0 && l[0].GetName() == "cluster" {
				clusters[l[0].GetValue()] = true
			}
		}
		if !clusters["east"] || !clusters["west"] {
			t.Errorf("%s: series of clusters %v, want east and west", f.GetName(), clusters)
		}
	}
}

func TestForClusterTwiceSharesSeries(t *testing.T) {
	rec, reg := newRecorder(t)
	a := rec.ForCluster("east")
	b := metrics.ForCluster(rec, "east")
	c := metrics.ForCluster(metrics.ForCluster(rec, "west"), "east") // from another cluster's Recorder
	if a != b || a != c {
		t.Errorf("ForCluster(\"east\") three times gave %p, %p, %p; want one Recorder", a, b, c)
	}
	if got := rec.ForCluster(""); got != metrics.Recorder(rec) {
		t.Errorf("ForCluster(\"\") = %p, want New's Recorder %p", got, rec)
	}
	a.RunStarted()
	b.RunStarted()
	c.RunStarted()
	want := `
# HELP kubeworker_runs_started_total Runs a Worker started.
# TYPE kubeworker_runs_started_total counter
kubeworker_runs_started_total{cluster=""} 0
kubeworker_runs_started_total{cluster="east"} 3
kubeworker_runs_started_total{cluster="west"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubeworker_runs_started_total"); err != nil {
		t.Error(err)
	}
}

func TestClustersAfterMaxClustersRecordAsOther(t *testing.T) {
	rec, reg := newRecorder(t)
	for i := range prom.MaxClusters {
		metrics.ForCluster(rec, fmt.Sprintf("cluster-%d", i)).RunStarted()
	}
	metrics.ForCluster(rec, "one-too-many").RunStarted()
	metrics.ForCluster(rec, "two-too-many").RunStarted()
	metrics.ForCluster(rec, "cluster-0").RunStarted() // a name seen before keeps its own
	if got, other := rec.ForCluster("three-too-many"), rec.ForCluster(prom.OtherCluster); got != other {
		t.Errorf("a name past MaxClusters got %p, want the Recorder of %q, %p", got, prom.OtherCluster, other)
	}

	counts := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "kubeworker_runs_started_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if want := prom.MaxClusters + 2; len(counts) != want { // and "", "other"
		t.Errorf("%d clusters in runs_started_total, want %d", len(counts), want)
	}
	if counts["other"] != 2 || counts["cluster-0"] != 2 || counts["cluster-63"] != 1 {
		t.Errorf("runs started: other %v, cluster-0 %v, cluster-63 %v; want 2, 2, 1",
			counts["other"], counts["cluster-0"], counts["cluster-63"])
	}
}

func TestForClusterIsSafeWhileRecording(t *testing.T) {
	rec, reg := newRecorder(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				r := metrics.ForCluster(rec, fmt.Sprintf("c%d", (g+i)%4))
				r.RunStarted()
				r.APIRequest(metrics.Request{Verb: "list", Resource: "pods"}, 200)
				r.RunFinished("Failed")
			}
		})
	}
	wg.Wait()
	want := `
# HELP kubeworker_runs_finished_total Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).
# TYPE kubeworker_runs_finished_total counter
kubeworker_runs_finished_total{cluster="c0",outcome="Failed"} 200
kubeworker_runs_finished_total{cluster="c1",outcome="Failed"} 200
kubeworker_runs_finished_total{cluster="c2",outcome="Failed"} 200
kubeworker_runs_finished_total{cluster="c3",outcome="Failed"} 200
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubeworker_runs_finished_total"); err != nil {
		t.Error(err)
	}
}

func TestRecordingAClusterDoesNotAllocate(t *testing.T) {
	rec, _ := newRecorder(t)
	east := rec.ForCluster("east")
	recordAll(east) // the series exist from here on
	if n := testing.AllocsPerRun(100, func() { recordAll(east) }); n != 0 {
		t.Errorf("recording every fact once allocates %v times, want 0", n)
	}
}

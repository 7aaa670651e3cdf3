package prom_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

func newRecorder(t *testing.T) (*prom.Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	rec, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return rec, reg
}

func TestRecorderKeepsEachFactUnderItsMetric(t *testing.T) {
	rec, reg := newRecorder(t)
	rec.RunStarted()
	rec.RunStarted()
	rec.RunStarted()
	rec.RunFinished("Succeeded")
	rec.RunFinished("OOMKilled")
	rec.CreateAttempt(false)
	rec.CreateAttempt(true)
	rec.CreateAttempt(false)
	rec.WatchRestart("jobs")
	rec.WatchRestart("pods")
	rec.WatchRestart("pods")
	rec.Relist("pods", true)
	rec.Relist("jobs", false)
	rec.LogReconnect()
	rec.PodStartLatency(1500 * time.Millisecond)
	rec.ResultLatency(300 * time.Millisecond)
	rec.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)
	rec.APIRequest(metrics.Request{Verb: "get", Resource: "pods/log"}, 200)
	rec.APIRequest(metrics.Request{Verb: "get", Resource: "pods/log"}, 200)
	rec.APIRequest(metrics.Request{Verb: "watch", Resource: "jobs"}, 0)
	rec.AdmissionWait(2*time.Second, false)
	rec.AdmissionWait(5*time.Second, true)
	rec.AdmissionWait(3*time.Second, true)
	rec.Preempted()
	rec.Requeued()
	rec.Requeued()
	rec.QueueWaitStarted()
	rec.QueueWaitStarted()
	rec.QueueWaitEnded()

	want := `
# HELP kubeworker_api_requests_total API requests made, by Kubernetes verb, resource[/subresource] and HTTP status code (error: no answer).
# TYPE kubeworker_api_requests_total counter
kubeworker_api_requests_total{cluster="",code="200",resource="pods/log",verb="get"} 2
kubeworker_api_requests_total{cluster="",code="201",resource="jobs",verb="create"} 1
kubeworker_api_requests_total{cluster="",code="error",resource="jobs",verb="watch"} 1
# HELP kubeworker_job_create_attempts_total Attempts to create a run's Job, first attempts and retries.
# TYPE kubeworker_job_create_attempts_total counter
kubeworker_job_create_attempts_total{cluster=""} 3
# HELP kubeworker_job_create_retries_total Attempts to create a run's Job after the first.
# TYPE kubeworker_job_create_retries_total counter
kubeworker_job_create_retries_total{cluster=""} 1
# HELP kubeworker_log_reconnects_total Log streams opened again after a drop or a failed read.
# TYPE kubeworker_log_reconnects_total counter
kubeworker_log_reconnects_total{cluster=""} 1
# HELP kubeworker_preemptions_total Followed Jobs preempted by Kueue (Workload evicted with reason Preempted).
# TYPE kubeworker_preemptions_total counter
kubeworker_preemptions_total{cluster=""} 1
# HELP kubeworker_requeues_total Followed Jobs that Kueue put back in their queue after an eviction.
# TYPE kubeworker_requeues_total counter
kubeworker_requeues_total{cluster=""} 2
# HELP kubeworker_runs_finished_total Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).
# TYPE kubeworker_runs_finished_total counter
kubeworker_runs_finished_total{cluster="",outcome="OOMKilled"} 1
kubeworker_runs_finished_total{cluster="",outcome="Succeeded"} 1
# HELP kubeworker_runs_in_flight Runs started and not yet finished.
# TYPE kubeworker_runs_in_flight gauge
kubeworker_runs_in_flight{cluster=""} 1
# HELP kubeworker_runs_queued Followed Jobs waiting for Kueue's admission now.
# TYPE kubeworker_runs_queued gauge
kubeworker_runs_queued{cluster=""} 1
# HELP kubeworker_runs_started_total Runs a Worker started.
# TYPE kubeworker_runs_started_total counter
kubeworker_runs_started_total{cluster=""} 3
# HELP kubeworker_watch_relists_total Times a shared watch stream read every object again after its first sync; reason expired: after 410 Gone.
# TYPE kubeworker_watch_relists_total counter
kubeworker_watch_relists_total{cluster="",reason="expired",resource="pods"} 1
kubeworker_watch_relists_total{cluster="",reason="other",resource="jobs"} 1
# HELP kubeworker_watch_restarts_total Times a shared watch stream opened its watch again, from the last version seen (server timeouts, dropped connections, errors).
# TYPE kubeworker_watch_restarts_total counter
kubeworker_watch_restarts_total{cluster="",resource="jobs"} 1
kubeworker_watch_restarts_total{cluster="",resource="pods"} 2
`
	names := []string{
		"kubeworker_api_requests_total", "kubeworker_job_create_attempts_total", "kubeworker_job_create_retries_total",
		"kubeworker_log_reconnects_total", "kubeworker_runs_finished_total", "kubeworker_runs_in_flight",
		"kubeworker_runs_started_total", "kubeworker_watch_relists_total", "kubeworker_watch_restarts_total",
		"kubeworker_preemptions_total", "kubeworker_requeues_total", "kubeworker_runs_queued",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	for name, wantSum := range map[string]float64{
		"kubeworker_pod_start_latency_seconds": 1.5,
		"kubeworker_result_latency_seconds":    0.3,
	} {
		h := histogram(t, reg, name)
		if h.GetSampleCount() != 1 || h.GetSampleSum() != wantSum {
			t.Errorf("%s: %d samples summing %v, want 1 summing %v", name, h.GetSampleCount(), h.GetSampleSum(), wantSum)
		}
	}
	for since, want := range map[string][2]float64{"creation": {1, 2}, "eviction": {2, 8}} {
		h := histogramWith(t, reg, "kubeworker_admission_wait_seconds", "since", since)
		if got := [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}; got != want {
			t.Errorf("admission_wait_seconds{since=%q}: %v samples and sum, want %v", since, got, want)
		}
	}
}

// histogramWith returns the histogram named name from reg whose label
// key has value.
func histogramWith(t *testing.T, reg prometheus.Gatherer, name, key, value string) interface {
	GetSampleCount() uint64
	GetSampleSum() float64
} {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == key && l.GetValue() == value {
					return m.GetHistogram()
				}
			}
		}
	}
	t.Fatalf("no histogram %s{%s=%q}", name, key, value)
	return nil
}

// histogram returns the histogram named name from reg.
func histogram(t *testing.T, reg prometheus.Gatherer, name string) interface {
	GetSampleCount() uint64
	GetSampleSum() float64
} {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no histogram %s", name)
	return nil
}

func TestMetricsFollowPrometheusNaming(t *testing.T) {
	rec, reg := newRecorder(t)
	// Make every vector show a series, so the linter sees it.
	rec.RunFinished("Succeeded")
	rec.WatchRestart("jobs")
	rec.Relist("jobs", true)
	rec.APIRequest(metrics.Request{Verb: "get", Resource: "jobs"}, 200)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 15 {
		t.Errorf("%d metric families, want 15", len(families))
	}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "kubeworker_") {
			t.Errorf("%s lacks the kubeworker_ prefix", f.GetName())
		}
	}
}

func TestNewRefusesNilAndRegistersAllOrNothing(t *testing.T) {
	if _, err := prom.New(nil); err == nil || !strings.Contains(err.Error(), "Registerer") {
		t.Errorf("New(nil) = %v, want an error naming the Registerer", err)
	}
	reg := prometheus.NewRegistry()
	taken := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeworker_api_requests_total", Help: "someone else's"}, []string{"x"})
	reg.MustRegister(taken)
	_, err := prom.New(reg)
	var already prometheus.AlreadyRegisteredError
	if err == nil || (!errors.As(err, &already) && !strings.Contains(err.Error(), "kubeworker_api_requests_total")) {
		t.Fatalf("New on a registry holding a clashing metric = %v, want an error", err)
	}
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() != "kubeworker_api_requests_total" {
			t.Errorf("a failed New left %s registered", f.GetName())
		}
	}
	// A second Recorder on one registry is refused, and the first
	// keeps working.
	reg = prometheus.NewRegistry()
	first, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prom.New(reg); err == nil {
		t.Errorf("a second New on one registry succeeded")
	}
	first.RunStarted()
	if n, err := testutil.GatherAndCount(reg, "kubeworker_runs_started_total"); err != nil || n != 1 {
		t.Errorf("the first Recorder's runs_started_total: %d series, %v", n, err)
	}
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	rec, reg := newRecorder(t)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				rec.RunStarted()
				rec.APIRequest(metrics.Request{Verb: "list", Resource: "pods"}, 200)
				rec.RunFinished("Failed")
			}
		}()
	}
	for range 8 {
		<-done
	}
	if n := testutil.CollectAndCount(reg, "kubeworker_api_requests_total"); n != 1 {
		t.Errorf("%d api request series, want 1", n)
	}
	want := `
# HELP kubeworker_runs_in_flight Runs started and not yet finished.
# TYPE kubeworker_runs_in_flight gauge
kubeworker_runs_in_flight{cluster=""} 0
# HELP kubeworker_runs_finished_total Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).
# TYPE kubeworker_runs_finished_total counter
kubeworker_runs_finished_total{cluster="",outcome="Failed"} 800
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubeworker_runs_in_flight", "kubeworker_runs_finished_total"); err != nil {
		t.Error(err)
	}
}

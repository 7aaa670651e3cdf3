// Package prom records kubeworker's metrics in Prometheus collectors
// (github.com/prometheus/client_golang), for a platform team to scrape.
// It is a package of its own so that importing kubeworker's core
// packages does not pull Prometheus in.
//
//	reg := prometheus.NewRegistry()
//	rec, err := prom.New(reg)
//	if err != nil {
//		return err
//	}
//	cfg, err := kubeconfig.Load(kubeconfig.Options{Metrics: rec}) // counts API requests
//	w, err := worker.New(kubernetes.NewForConfigOrDie(cfg), worker.Options{Metrics: rec})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// The metrics, all prefixed kubeworker_:
//
//	runs_started_total                            runs a Worker started
//	runs_finished_total{outcome}                  runs ended, by jobwatch.Outcome ("Unknown": Run returned an error)
//	runs_in_flight                                runs started and not finished
//	job_create_attempts_total                     attempts to create a run's Job
//	job_create_retries_total                      of those, attempts after the first
//	watch_restarts_total{resource}                shared watches opened again (timeouts, drops, errors)
//	watch_relists_total{resource,reason}          shared streams that read everything again; reason "expired" (410 Gone) or "other"
//	log_reconnects_total                          log streams opened again after a drop or a failed read
//	pod_start_latency_seconds                     histogram: Job creation to its first pod's run container start
//	result_latency_seconds                        histogram: run container termination to the Result
//	api_requests_total{verb,resource,code}        API requests, by Kubernetes verb, resource[/subresource] and status code ("error": no answer)
//
// The two latencies come from server timestamps of whole seconds: read
// them to the second.
package prom

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubeworker/kubeworker/metrics"
)

const namespace = "kubeworker"

// Recorder is a metrics.Recorder that keeps what it records in
// Prometheus collectors, registered by New. It is safe for concurrent
// use.
type Recorder struct {
	runsStarted    prometheus.Counter
	runsFinished   *prometheus.CounterVec
	runsInFlight   prometheus.Gauge
	createAttempts prometheus.Counter
	createRetries  prometheus.Counter
	watchRestarts  *prometheus.CounterVec
	relists        *prometheus.CounterVec
	logReconnects  prometheus.Counter
	podStart       prometheus.Histogram
	resultLatency  prometheus.Histogram
	requests       *prometheus.CounterVec
}

var _ metrics.Recorder = (*Recorder)(nil)

// New returns a Recorder whose collectors are registered on reg. It
// fails, registering nothing, if reg is nil or refuses one (for example
// because a Recorder is registered there already).
func New(reg prometheus.Registerer) (*Recorder, error) {
	if reg == nil {
		return nil, errors.New("prom: New needs a prometheus.Registerer, got nil")
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	}
	r := &Recorder{
		runsStarted:  counter("runs_started_total", "Runs a Worker started."),
		runsFinished: counterVec("runs_finished_total", "Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).", "outcome"),
		runsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "runs_in_flight",
			Help: "Runs started and not yet finished."}),
		createAttempts: counter("job_create_attempts_total", "Attempts to create a run's Job, first attempts and retries."),
		createRetries:  counter("job_create_retries_total", "Attempts to create a run's Job after the first."),
		watchRestarts: counterVec("watch_restarts_total",
			"Times a shared watch stream opened its watch again, from the last version seen (server timeouts, dropped connections, errors).", "resource"),
		relists: counterVec("watch_relists_total",
			"Times a shared watch stream read every object again after its first sync; reason expired: after 410 Gone.", "resource", "reason"),
		logReconnects: counter("log_reconnects_total", "Log streams opened again after a drop or a failed read."),
		podStart: histogram("pod_start_latency_seconds",
			"Time from a followed Job's creation to the start of its first pod's run container (server timestamps, whole seconds).",
			[]float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}),
		resultLatency: histogram("result_latency_seconds",
			"Time from a run container's termination (a server timestamp, whole seconds) to its Result.",
			[]float64{0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60}),
		requests: counterVec("api_requests_total",
			"API requests made, by Kubernetes verb, resource[/subresource] and HTTP status code (error: no answer).", "verb", "resource", "code"),
	}
	collectors := []prometheus.Collector{
		r.runsStarted, r.runsFinished, r.runsInFlight, r.createAttempts, r.createRetries,
		r.watchRestarts, r.relists, r.logReconnects, r.podStart, r.resultLatency, r.requests,
	}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("prom: register the kubeworker metrics: %w", err)
		}
	}
	return r, nil
}

// RunStarted counts a run started and in flight.
func (r *Recorder) RunStarted() {
	r.runsStarted.Inc()
	r.runsInFlight.Inc()
}

// RunFinished counts a run finished with outcome, no longer in flight.
func (r *Recorder) RunFinished(outcome string) {
	r.runsFinished.WithLabelValues(outcome).Inc()
	r.runsInFlight.Dec()
}

// CreateAttempt counts an attempt to create a Job, and a retry if it is
// one.
func (r *Recorder) CreateAttempt(retry bool) {
	r.createAttempts.Inc()
	if retry {
		r.createRetries.Inc()
	}
}

// WatchRestart counts a watch of resource opened again.
func (r *Recorder) WatchRestart(resource string) {
	r.watchRestarts.WithLabelValues(resource).Inc()
}

// Relist counts a relist of resource, with reason "expired" or "other".
func (r *Recorder) Relist(resource string, expired bool) {
	reason := "other"
	if expired {
		reason = "expired"
	}
	r.relists.WithLabelValues(resource, reason).Inc()
}

// LogReconnect counts a log stream opened again.
func (r *Recorder) LogReconnect() { r.logReconnects.Inc() }

// PodStartLatency observes d in seconds.
func (r *Recorder) PodStartLatency(d time.Duration) { r.podStart.Observe(d.Seconds()) }

// ResultLatency observes d in seconds.
func (r *Recorder) ResultLatency(d time.Duration) { r.resultLatency.Observe(d.Seconds()) }

// APIRequest counts req with its status code, or "error" for 0.
func (r *Recorder) APIRequest(req metrics.Request, code int) {
	c := "error"
	if code != 0 {
		c = strconv.Itoa(code)
	}
	r.requests.WithLabelValues(req.Verb, req.Resource, c).Inc()
}

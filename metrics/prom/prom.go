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
//	runs_started_total{cluster}                          runs a Worker started
//	runs_finished_total{cluster,outcome}                 runs ended, by jobwatch.Outcome ("Unknown": Run returned an error)
//	runs_in_flight{cluster}                              runs started and not finished
//	job_create_attempts_total{cluster}                   attempts to create a run's Job
//	job_create_retries_total{cluster}                    of those, attempts after the first
//	watch_restarts_total{cluster,resource}               shared watches opened again (timeouts, drops, errors)
//	watch_relists_total{cluster,resource,reason}         shared streams that read everything again; reason "expired" (410 Gone) or "other"
//	log_reconnects_total{cluster}                        log streams opened again after a drop or a failed read
//	pod_start_latency_seconds{cluster}                   histogram: Job creation to its first pod's run container start
//	result_latency_seconds{cluster}                      histogram: run container termination to the Result
//	api_requests_total{cluster,verb,resource,code}       API requests, by Kubernetes verb, resource[/subresource] and status code ("error": no answer)
//	admission_wait_seconds{cluster,since}                histogram: a Kueue-queued Job's wait for admission, since "creation" (its first) or "eviction" (after a requeue)
//	preemptions_total{cluster}                           followed Jobs preempted by Kueue
//	requeues_total{cluster}                              followed Jobs Kueue put back in their queue after an eviction
//	runs_queued{cluster}                                 followed Jobs waiting for Kueue's admission now
//
// The latencies and the admission wait come from server timestamps of
// whole seconds: read them to the second.
//
// # The cluster label
//
// Every metric has a cluster label: the cluster where the run, the
// watch or the request happened. The Recorder New returns records with
// cluster="" (for a single cluster, or a part used alone); a Worker of
// many clusters gives each cluster's parts the Recorder that
// [Recorder.ForCluster] (through metrics.ForCluster) returns for its
// name or UID. All of them record into the one set of collectors New
// registered. Each Recorder's series of the metrics without other
// labels exist, at zero, from when it is made, so New's cluster=""
// series show even when every fact is recorded for a named cluster. To
// keep the label bounded, the Recorders of one New give at most
// [MaxClusters] names series of their own; later names share the
// cluster [OtherCluster].
package prom

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "kubeworker"

// collectors are the collectors New registers, shared by the Recorders
// of every cluster, with those Recorders.
type collectors struct {
	runsStarted    *prometheus.CounterVec
	runsFinished   *prometheus.CounterVec
	runsInFlight   *prometheus.GaugeVec
	createAttempts *prometheus.CounterVec
	createRetries  *prometheus.CounterVec
	watchRestarts  *prometheus.CounterVec
	relists        *prometheus.CounterVec
	logReconnects  *prometheus.CounterVec
	podStart       *prometheus.HistogramVec
	resultLatency  *prometheus.HistogramVec
	requests       *prometheus.CounterVec
	admissionWait  *prometheus.HistogramVec
	preemptions    *prometheus.CounterVec
	requeues       *prometheus.CounterVec
	runsQueued     *prometheus.GaugeVec

	base *Recorder // cluster ""

	mu       sync.Mutex
	clusters map[string]*Recorder // guarded by mu; MaxClusters names, then OtherCluster
}

// New returns a Recorder whose collectors are registered on reg. It
// records with cluster=""; [Recorder.ForCluster] gives the Recorder of
// a cluster. New fails, registering nothing, if reg is nil or refuses
// a collector (for example because a Recorder is registered there
// already).
func New(reg prometheus.Registerer) (*Recorder, error) {
	if reg == nil {
		return nil, errors.New("prom: New needs a prometheus.Registerer, got nil")
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help},
			append([]string{"cluster"}, labels...))
	}
	histogramVec := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets},
			[]string{"cluster"})
	}
	c := &collectors{
		runsStarted:  counterVec("runs_started_total", "Runs a Worker started."),
		runsFinished: counterVec("runs_finished_total", "Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).", "outcome"),
		runsInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "runs_in_flight",
			Help: "Runs started and not yet finished."}, []string{"cluster"}),
		createAttempts: counterVec("job_create_attempts_total", "Attempts to create a run's Job, first attempts and retries."),
		createRetries:  counterVec("job_create_retries_total", "Attempts to create a run's Job after the first."),
		watchRestarts: counterVec("watch_restarts_total",
			"Times a shared watch stream opened its watch again, from the last version seen (server timeouts, dropped connections, errors).", "resource"),
		relists: counterVec("watch_relists_total",
			"Times a shared watch stream read every object again after its first sync; reason expired: after 410 Gone.", "resource", "reason"),
		logReconnects: counterVec("log_reconnects_total", "Log streams opened again after a drop or a failed read."),
		podStart: histogramVec("pod_start_latency_seconds",
			"Time from a followed Job's creation to the start of its first pod's run container (server timestamps, whole seconds).",
			[]float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}),
		resultLatency: histogramVec("result_latency_seconds",
			"Time from a run container's termination (a server timestamp, whole seconds) to its Result.",
			[]float64{0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60}),
		requests: counterVec("api_requests_total",
			"API requests made, by Kubernetes verb, resource[/subresource] and HTTP status code (error: no answer).", "verb", "resource", "code"),
		admissionWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "admission_wait_seconds",
			Help:    "Time a Kueue-queued Job waited for its admission (server timestamps, whole seconds), since its creation (first admission) or its eviction (a later one).",
			Buckets: []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600}}, []string{"cluster", "since"}),
		preemptions: counterVec("preemptions_total", "Followed Jobs preempted by Kueue (Workload evicted with reason Preempted)."),
		requeues:    counterVec("requeues_total", "Followed Jobs that Kueue put back in their queue after an eviction."),
		runsQueued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "runs_queued",
			Help: "Followed Jobs waiting for Kueue's admission now."}, []string{"cluster"}),
		clusters: map[string]*Recorder{},
	}
	all := []prometheus.Collector{
		c.runsStarted, c.runsFinished, c.runsInFlight, c.createAttempts, c.createRetries,
		c.watchRestarts, c.relists, c.logReconnects, c.podStart, c.resultLatency, c.requests,
		c.admissionWait, c.preemptions, c.requeues, c.runsQueued,
	}
	for i, col := range all {
		if err := reg.Register(col); err != nil {
			for _, done := range all[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("prom: register the kubeworker metrics: %w", err)
		}
	}
	c.base = c.recorder("")
	return c.base, nil
}

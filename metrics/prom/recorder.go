package prom

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubeworker/kubeworker/metrics"
)

// Recorder is a metrics.Recorder that keeps what it records in
// Prometheus collectors, registered by New, under the label value
// cluster of one cluster. It is safe for concurrent use.
//
// A Recorder holds its cluster's series of the metrics without other
// labels, and its cluster's part of the others, so that recording
// costs no more than it would without the cluster label.
type Recorder struct {
	set *collectors

	runsStarted    prometheus.Counter
	runsFinished   *prometheus.CounterVec // curried with cluster, as are the other vectors
	runsInFlight   prometheus.Gauge
	createAttempts prometheus.Counter
	createRetries  prometheus.Counter
	watchRestarts  *prometheus.CounterVec
	relists        *prometheus.CounterVec
	logReconnects  prometheus.Counter
	podStart       prometheus.Observer
	resultLatency  prometheus.Observer
	requests       *prometheus.CounterVec
	admittedFirst  prometheus.Observer // admission_wait_seconds, since="creation"
	admittedAgain  prometheus.Observer // since="eviction"
	preemptions    prometheus.Counter
	requeues       prometheus.Counter
	runsQueued     prometheus.Gauge
}

var _ metrics.ClusterRecorder = (*Recorder)(nil)

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
	r.requests.WithLabelValues(req.Verb, req.Resource, codeLabel(code)).Inc()
}

// AdmissionWait observes d in seconds, since "eviction" if requeued,
// else since "creation".
func (r *Recorder) AdmissionWait(d time.Duration, requeued bool) {
	if requeued {
		r.admittedAgain.Observe(d.Seconds())
		return
	}
	r.admittedFirst.Observe(d.Seconds())
}

// Preempted counts a preemption.
func (r *Recorder) Preempted() { r.preemptions.Inc() }

// Requeued counts a requeue.
func (r *Recorder) Requeued() { r.requeues.Inc() }

// QueueWaitStarted counts a run queued now.
func (r *Recorder) QueueWaitStarted() { r.runsQueued.Inc() }

// QueueWaitEnded counts a run no longer queued.
func (r *Recorder) QueueWaitEnded() { r.runsQueued.Dec() }

// codes are the label values of status codes 100 to 599, made once, so
// that counting a request allocates nothing.
var codes = func() (c [600]string) {
	for i := 100; i < len(c); i++ {
		c[i] = strconv.Itoa(i)
	}
	return c
}()

// codeLabel returns the label value of a status code: "error" for 0.
func codeLabel(code int) string {
	switch {
	case code == 0:
		return "error"
	case code >= 100 && code < len(codes):
		return codes[code]
	}
	return strconv.Itoa(code)
}

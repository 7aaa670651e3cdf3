package prom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kubeworker/kubeworker/metrics"
)

// MaxClusters is how many cluster names get series of their own in the
// collectors of one New, besides cluster="". The cluster label stays
// bounded even when a Worker's runs name many clusters (by UID).
const MaxClusters = 64

// OtherCluster is the cluster label value under which the Recorders of
// every cluster name after the first MaxClusters record.
const OtherCluster = "other"

// ForCluster returns the Recorder that records with the label value
// cluster, into the same collectors as r. ForCluster("") returns the
// Recorder New returned. Two calls with one name, on r or on any
// Recorder of the same New, return the same Recorder (so WrapTransport
// counts a request once in it). The first MaxClusters distinct names
// get series of their own; every later name gets the Recorder of
// OtherCluster, as does the name "other" itself. It is safe for
// concurrent use, and costs a lock and a map lookup: call it once per
// cluster, not per fact.
func (r *Recorder) ForCluster(cluster string) metrics.Recorder {
	c := r.set
	if cluster == "" {
		return c.base
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec, ok := c.clusters[cluster]; ok {
		return rec
	}
	if len(c.clusters) >= MaxClusters {
		cluster = OtherCluster
		if rec, ok := c.clusters[cluster]; ok {
			return rec
		}
	}
	rec := c.recorder(cluster)
	c.clusters[cluster] = rec
	return rec
}

// recorder returns a new Recorder of cluster, holding its series.
func (c *collectors) recorder(cluster string) *Recorder {
	l := prometheus.Labels{"cluster": cluster}
	return &Recorder{
		set:            c,
		runsStarted:    c.runsStarted.WithLabelValues(cluster),
		runsFinished:   c.runsFinished.MustCurryWith(l),
		runsInFlight:   c.runsInFlight.WithLabelValues(cluster),
		createAttempts: c.createAttempts.WithLabelValues(cluster),
		createRetries:  c.createRetries.WithLabelValues(cluster),
		watchRestarts:  c.watchRestarts.MustCurryWith(l),
		relists:        c.relists.MustCurryWith(l),
		logReconnects:  c.logReconnects.WithLabelValues(cluster),
		podStart:       c.podStart.WithLabelValues(cluster),
		resultLatency:  c.resultLatency.WithLabelValues(cluster),
		requests:       c.requests.MustCurryWith(l),
		admittedFirst:  c.admissionWait.WithLabelValues(cluster, "creation"),
		admittedAgain:  c.admissionWait.WithLabelValues(cluster, "eviction"),
		preemptions:    c.preemptions.WithLabelValues(cluster),
		requeues:       c.requeues.WithLabelValues(cluster),
		runsQueued:     c.runsQueued.WithLabelValues(cluster),
	}
}

package worker

import (
	"context"

	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/metrics"
)

// runMetrics records one run in a Recorder and counts the API requests
// made for it.
type runMetrics struct {
	rec   metrics.Recorder
	count *metrics.RequestCount
}

// beginRun records the start of a run (started, in flight) and returns
// ctx carrying a fresh request count for it, so that every request made
// with it, through a client whose transport counts (see Config), is the
// run's. Requests of the shared watch streams run on the Watcher's own
// context and are charged to no run. Call end once the run is over.
func beginRun(ctx context.Context, rec metrics.Recorder) (context.Context, *runMetrics) {
	m := &runMetrics{rec: metrics.OrDiscard(rec), count: new(metrics.RequestCount)}
	m.rec.RunStarted()
	return metrics.WithRequestCount(ctx, m.count), m
}

// end records that the run finished with outcome (Unknown when Run
// returns an error without a Result from the Waiter) and returns the
// requests made for it.
func (m *runMetrics) end(outcome jobwatch.Outcome) metrics.Requests {
	m.rec.RunFinished(outcome.String())
	return m.count.Requests()
}

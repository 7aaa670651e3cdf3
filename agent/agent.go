package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kubeworker/kubeworker/worker"
)

// Source is where an Agent finds work; the caller implements it (a
// queue, an API to poll). Next returns the next run and true, or false
// when there is nothing to do now, in which case the Agent backs off before
// asking again. An error is logged and backed off like an empty poll (a run
// returned with it is dropped); it does not stop the Agent. Next is called from one goroutine at a time and
// should return within Options.StallTimeout, or the Agent's liveness
// check fails.
type Source interface {
	Next(ctx context.Context) (worker.RunSpec, bool, error)
}

// SourceFunc adapts a function to a Source.
type SourceFunc func(ctx context.Context) (worker.RunSpec, bool, error)

// Next calls f.
func (f SourceFunc) Next(ctx context.Context) (worker.RunSpec, bool, error) { return f(ctx) }

// Options configure an Agent. The zero value works.
type Options struct {
	// MaxPolls stops the Agent after that many calls to Source.Next,
	// whether they found work or not; Serve then waits for the runs it
	// started. Default: 0, unlimited.
	MaxPolls int
	// MinBackoff and MaxBackoff bound the wait after a poll that found
	// nothing or failed: it starts at MinBackoff, doubles after each such
	// poll up to MaxBackoff, and goes back to MinBackoff as soon as a poll
	// finds work (which is followed by the next poll at once). Defaults:
	// 250ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Concurrency is the most runs in flight at once. While that many are
	// running, the Agent does not poll. Default: 10.
	Concurrency int
	// CancelOnShutdown cancels the context of the runs in flight when
	// Serve's context ends. Default: false, Serve stops polling and waits
	// for them to finish (their contexts keep Serve's values but not its
	// cancellation).
	CancelOnShutdown bool
	// Report is called, from the run's goroutine, with each run taken from
	// the source and how Worker.Run ended it. Default: nil, the outcome is
	// only logged.
	Report func(worker.RunSpec, worker.Result, error)
	// StallTimeout is how long one poll, or one back-off, may last before
	// the Agent's /healthz reports it wedged. Time spent waiting for a free
	// run slot does not count; it should exceed MaxBackoff. Default:
	// 6 × MaxBackoff (one minute with the default back-off).
	StallTimeout time.Duration
	// Logger receives the Agent's logs. Default: discard.
	Logger *slog.Logger
}

// Agent is a polling loop that feeds a worker, like a Prefect 1 agent: it
// asks a Source for work, runs each run through Worker.Run with at most
// Concurrency in flight, and backs off while there is nothing to do. Make
// one with New, start it with Serve, and mount HealthHandler for the
// liveness and readiness probes of its Deployment (see DeploymentManifest).
//
// An Agent is a separate type, not a worker method, so that its state (the
// last poll, for /healthz) lives next to the loop; one Worker may feed
// several Agents.
type Agent struct {
	w    *worker.Worker
	src  Source
	opts Options
	log  *slog.Logger

	// wait sleeps d or until ctx ends; tests replace it.
	wait func(ctx context.Context, d time.Duration) error
	// now is the clock of the health check; tests replace it.
	now func() time.Time

	state atomic.Int32 // an agentState
	beat  atomic.Int64 // unix nanoseconds of the last loop progress
	idle  atomic.Bool  // true while the loop waits for a free run slot
}

type agentState int32

const (
	agentNew agentState = iota
	agentServing
	agentStopped
)

// New returns an Agent that takes runs from src and runs them on w.
func New(w *worker.Worker, src Source, opts Options) *Agent {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 10 * time.Second
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 10
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 6 * opts.MaxBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Agent{w: w, src: src, opts: opts, log: opts.Logger, wait: sleepCtx, now: time.Now}
}

// Serve readies the Worker (Worker.Start, for at most StallTimeout), then
// polls the source and runs what it finds until ctx ends or
// MaxPolls polls were made, then waits for the runs in flight (cancelling
// them first if CancelOnShutdown) and returns. A run's error goes to
// Report and does not stop Serve, except ErrClosed: once the Worker is
// closed Serve stops polling and returns worker.ErrClosed. Serve returns nil after
// a graceful stop, whether by ctx or MaxPolls. Serve may be called once.
func (a *Agent) Serve(ctx context.Context) error {
	if !a.state.CompareAndSwap(int32(agentNew), int32(agentServing)) {
		return errors.New("worker: Agent.Serve called twice")
	}
	defer a.state.Store(int32(agentStopped))
	a.tick()
	// Ready the Worker before the first poll, as a controller syncs its
	// caches. A failure is logged, not fatal: each run readies what it
	// needs again, and the readiness check names what is not synced.
	sctx, cancel := context.WithTimeout(ctx, a.opts.StallTimeout)
	err := a.w.Start(sctx)
	cancel()
	switch {
	case errors.Is(err, worker.ErrClosed):
		return worker.ErrClosed
	case err != nil && ctx.Err() == nil:
		a.log.WarnContext(ctx, "worker not ready; polling anyway", "error", err)
	}
	a.tick()

	runCtx := context.WithoutCancel(ctx)
	if a.opts.CancelOnShutdown {
		runCtx = ctx
	}
	runCtx, stopRuns := context.WithCancelCause(runCtx)
	defer stopRuns(nil)
	// pollCtx ends with ctx or when the Worker turns out to be closed.
	pollCtx, stopPolling := context.WithCancelCause(ctx)
	defer stopPolling(nil)

	var g errgroup.Group
	g.SetLimit(a.opts.Concurrency)
	var inflight atomic.Int32
	freed := make(chan struct{}, 1)

	backoff := a.opts.MinBackoff
	for polls := 0; a.opts.MaxPolls == 0 || polls < a.opts.MaxPolls; polls++ {
		// Poll only when a run found can start at once.
		for int(inflight.Load()) >= a.opts.Concurrency && pollCtx.Err() == nil {
			a.idle.Store(true)
			select {
			case <-freed:
			case <-pollCtx.Done():
			}
			a.idle.Store(false)
			a.tick()
		}
		if pollCtx.Err() != nil {
			break
		}
		a.tick()
		run, ok, err := a.src.Next(pollCtx)
		a.tick()
		if pollCtx.Err() != nil && !ok {
			break
		}
		if err != nil {
			a.log.WarnContext(ctx, "run source failed; backing off", "error", err, "backoff", backoff)
		}
		if !ok || err != nil {
			if a.opts.MaxPolls != 0 && polls+1 >= a.opts.MaxPolls {
				break
			}
			if a.wait(pollCtx, backoff) != nil {
				break
			}
			backoff = min(2*backoff, a.opts.MaxBackoff)
			continue
		}
		backoff = a.opts.MinBackoff
		inflight.Add(1)
		g.Go(func() error {
			defer func() {
				inflight.Add(-1)
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
			return a.runOne(runCtx, run, stopPolling)
		})
	}
	return g.Wait()
}

// runOne runs one run and reports it. It returns an error only when the
// Worker is closed, after stopping the polling loop.
func (a *Agent) runOne(ctx context.Context, run worker.RunSpec, stopPolling context.CancelCauseFunc) error {
	res, err := a.w.Run(ctx, run)
	if a.opts.Report != nil {
		a.opts.Report(run, res, err)
	}
	switch {
	case errors.Is(err, worker.ErrClosed):
		stopPolling(worker.ErrClosed)
		return fmt.Errorf("worker: agent: run %s: %w", run.ID, err)
	case err != nil:
		a.log.ErrorContext(ctx, "run failed", "run", run.ID, "error", err)
	}
	return nil
}

// tick records loop progress for the liveness check.
func (a *Agent) tick() { a.beat.Store(a.now().UnixNano()) }

// sleepCtx waits d or until ctx ends, and then returns ctx's error.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

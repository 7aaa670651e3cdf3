package jobwatch

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Timing of Wait's own checks.
const (
	// notCachedGrace is how long Wait trusts the stream to deliver a Job
	// it has not cached before asking the API server (usually the Job
	// was created a moment ago and its watch event is on its way).
	notCachedGrace = 2 * time.Second
	// maxNotCached bounds how long Wait keeps trusting a Job stream that
	// is busy delivering other objects (a burst of creates, a watch
	// catching up after a restart) before it asks the API server anyway.
	maxNotCached = 30 * time.Second
	// settleTime is how long Wait waits, once the Job has ended, for the
	// pod stream to deliver the pod states the Job's counts imply (the
	// two streams are not ordered with each other); then it lists the
	// Job's pods itself, every settleTime until a list succeeds or the
	// stream catches up.
	settleTime = 2 * time.Second
	// getTimeout bounds the one GET of a Job not cached.
	getTimeout = 10 * time.Second
	// eventsTimeout bounds listing events for a diagnosis.
	eventsTimeout = 30 * time.Second
)

// Wait follows the Job ref until it ends and returns its Result, with a
// typed Outcome for every ending: success, failure with its exit code,
// the Job's own limits, eviction, OOM kill, a pod that never started
// (with a Diagnosis), deletion of the Job, opts.Deadline passing, or,
// for a Job queued in Kueue, its queue not admitting it (NotAdmitted)
// or deactivating it (see the package doc's Kueue section).
//
// The Job must exist when Wait begins (else ErrNotFound) and match
// Options.Selector (else ErrNotSelected). Wait first looks at the
// namespace's shared cache, so a Job that ended before Wait began is
// still seen; a Job not cached yet (created a moment ago) gets about two
// seconds to arrive before Wait asks the API server for it. Then Wait
// re-reads the current state on every change. It never acts on the Job:
// timeouts leave it as it is.
//
// Faults: Wait survives dropped connections, 410 Gone and API server
// restarts (the shared streams relist and resume; log streams resume
// without losing or repeating lines). When the Job has ended but the pod
// stream lags behind the Job stream, Wait lists the Job's pods itself
// rather than report an exit code it has not seen, retrying until the
// list succeeds (or Deadline, or ctx). A Job deleted while its stream
// was down is seen on relist, with its last state known to the stream,
// so one that ended and was deleted meanwhile may be reported Deleted.
//
// Wait returns an error only when it cannot follow the Job: ctx ended
// (ctx.Err()), the Watcher closed (ErrClosed), a bad ref or container
// name, or the namespace's stream never synced within the pod start
// timeout (for example Forbidden; the error says why). The Result then
// holds what was known. Logs and events are written before Wait returns;
// no goroutine of the run outlives it.
func (w *Watcher) Wait(ctx context.Context, ref JobRef, opts WaitOptions) (Result, error) {
	if err := ref.validate(); err != nil {
		return Result{ExitCode: -1}, err
	}
	s, err := w.stream(ref.Namespace)
	if err != nil {
		return Result{ExitCode: -1}, err
	}
	wt := s.register(ref.Name, opts.Events != nil)
	defer s.unregister(wt)
	r := &run{w: w, s: s, wt: wt, ref: ref, opts: opts, clock: w.clock, last: Result{ExitCode: -1}, began: w.clock.Now()}
	if opts.Events != nil {
		r.events = newEventLog(opts.Events)
	}
	defer r.endQueue()
	return r.wait(ctx)
}

// run is the state of one Wait. It is used by Wait's goroutine only.
type run struct {
	w     *Watcher
	s     *stream
	wt    *waiter
	ref   JobRef
	opts  WaitOptions
	clock clock.WithTicker

	began          time.Time     // when Wait began
	job            *batchv1.Job  // as last seen; its UID pins which Job this is
	goneAt         time.Time     // when the Job's deletion was seen
	ask            bool          // the grace has passed: ask the API server for the Job
	findSince      time.Time     // when the Job was first looked for
	started        bool          // a pod has left Pending
	podStartPassed bool          // the pod start timeout has passed
	queued         bool          // the Job is suspended and the pod start timeout paused
	settleDue      bool          // settleTime has passed since the end
	trustPods      bool          // the pods as known are all there is
	createDue      bool          // createTimer has fired: look at the events again
	createWait     time.Duration // the back-off of the FailedCreate checks; 0 while not stuck
	listed         []*corev1.Pod // the Job's pods as last listed directly
	last           Result        // the latest classification
	pods           []*corev1.Pod // the Job's pods as last seen, oldest first

	gone map[types.UID]bool // which of pods are gone (deleted), as last seen
	// old are the pods of a Job suspended again after they started (Kueue
	// preempted it): they no longer count as started, nor as the newest.
	old map[types.UID]bool

	kq *queueRun // Kueue's view, for a Job with a queue-name label; else nil

	events   *eventLog
	logs     *logFollower
	stopLogs context.CancelFunc

	grace, settle, podStart, createTimer clock.Timer
}

func (r *run) wait(ctx context.Context) (Result, error) {
	var deadline <-chan time.Time
	if d := r.opts.Deadline; d > 0 {
		t := r.clock.NewTimer(d)
		defer t.Stop()
		deadline = t.C()
	}
	if d := r.opts.podStartTimeout(); d > 0 {
		r.podStart = r.clock.NewTimer(d)
	}
	defer func() {
		for _, t := range []clock.Timer{r.grace, r.settle, r.podStart, r.createTimer} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	for {
		syncing := r.s.syncing()
		if syncing == nil && r.job == nil {
			if err := r.find(ctx); err != nil {
				return r.abort(), err
			}
		}
		if r.job != nil {
			res, done := r.evaluate(ctx)
			if done {
				return r.finish(ctx, r.explain(ctx, res)), nil
			}
			if r.kq != nil {
				r.observeQueue()
				if res, ok := r.queueEnd(); ok {
					return r.finish(ctx, res), nil
				}
			}
			if res, ok := r.cannotCreate(ctx, r.fresh()); ok {
				return r.finish(ctx, res), nil
			}
			r.queue()
			if !r.started && (r.podStartPassed || invalidImage(r.newest())) {
				return r.finish(ctx, r.diagnose(ctx)), nil
			}
		}
		select {
		case <-r.wt.wake:
		case <-syncing:
		case <-timerC(r.grace):
			r.grace, r.ask = nil, true
		case <-timerC(r.settle):
			r.settle, r.settleDue = nil, true
		case <-timerC(r.createTimer):
			r.createTimer, r.createDue = nil, true
		case <-r.queueTimer():
			r.kq.timer, r.kq.timedOut = nil, true
		case <-deadline:
			res := r.last
			res.Outcome, res.FinishedAt = TimedOut, r.clock.Now()
			return r.finish(ctx, res), nil
		case <-timerC(r.podStart):
			r.podStart, r.podStartPassed = nil, true
			if syncing != nil {
				return r.abort(), r.notSynced()
			}
		case <-ctx.Done():
			return r.abort(), ctx.Err()
		case <-r.w.ctx.Done():
			return r.abort(), ErrClosed
		}
	}
}

func (r *run) notSynced() error {
	err := fmt.Errorf("jobwatch: the watch of Jobs and pods in namespace %s did not sync within the pod start timeout", r.ref.Namespace)
	if cause := r.s.err(); cause != nil {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}

func timerC(t clock.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C()
}

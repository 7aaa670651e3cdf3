package jobwatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Timing of Wait's own checks.
const (
	// notCachedGrace is how long Wait trusts the stream to deliver a Job
	// it has not cached before asking the API server (usually the Job
	// was created a moment ago and its watch event is on its way).
	notCachedGrace = 2 * time.Second
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
// (with a Diagnosis), deletion of the Job, or opts.Deadline passing.
//
// The Job must exist when Wait begins (else ErrNotFound) and match
// Options.Selector (else ErrNotSelected). Wait first looks at the
// namespace's shared cache, so a Job that ended before Wait began is
// still seen, then re-reads the current state on every change. It never
// acts on the Job: timeouts leave it as it is.
//
// Faults: Wait survives dropped connections, 410 Gone and API server
// restarts (the shared streams relist and resume; log streams resume
// without losing or repeating lines). A Job deleted while its stream was
// down is seen on relist, with its last state known to the stream, so
// one that ended and was deleted meanwhile may be reported Deleted.
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
	r := &run{w: w, s: s, wt: wt, ref: ref, opts: opts, clock: w.clock, last: Result{ExitCode: -1}}
	if opts.Events != nil {
		r.events = newEventLog(opts.Events)
	}
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

	job            *batchv1.Job  // as last seen; its UID pins which Job this is
	goneAt         time.Time     // when the Job's deletion was seen
	ask            bool          // the grace has passed: ask the API server for the Job
	started        bool          // a pod has left Pending
	podStartPassed bool          // the pod start timeout has passed
	settleDue      bool          // settleTime has passed since the end
	trustPods      bool          // the pods as known are all there is
	listed         []*corev1.Pod // the Job's pods as listed directly, once
	last           Result        // the latest classification
	pods           []*corev1.Pod // the Job's pods as last seen, oldest first

	events   *eventLog
	logs     *logFollower
	stopLogs context.CancelFunc

	grace, settle clock.Timer
}

func (r *run) wait(ctx context.Context) (Result, error) {
	var deadline, podStart <-chan time.Time
	if d := r.opts.Deadline; d > 0 {
		t := r.clock.NewTimer(d)
		defer t.Stop()
		deadline = t.C()
	}
	if d := r.opts.podStartTimeout(); d > 0 {
		t := r.clock.NewTimer(d)
		defer t.Stop()
		podStart = t.C()
	}
	defer func() {
		for _, t := range []clock.Timer{r.grace, r.settle} {
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
				return r.finish(ctx, res), nil
			}
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
		case <-deadline:
			res := r.last
			res.Outcome, res.FinishedAt = TimedOut, r.clock.Now()
			return r.finish(ctx, res), nil
		case <-podStart:
			podStart, r.podStartPassed = nil, true
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

// find looks for the Job in the cache; after notCachedGrace without it,
// it asks the API server whether the Job exists at all.
func (r *run) find(ctx context.Context) error {
	if job := r.s.cachedJob(r.ref.Name); job != nil {
		return r.pin(job)
	}
	if !r.ask {
		if r.grace == nil {
			r.grace = r.clock.NewTimer(notCachedGrace)
		}
		return nil
	}
	r.ask = false
	gctx, cancel := context.WithTimeout(ctx, getTimeout)
	defer cancel()
	job, err := r.w.client.BatchV1().Jobs(r.ref.Namespace).Get(gctx, r.ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s: %w", ErrNotFound, r.ref, err)
	case err != nil:
		r.w.logger.Debug("jobwatch: get job failed; retrying", "job", r.ref.String(), "err", err)
		r.grace = r.clock.NewTimer(time.Second)
		return nil
	case !r.w.sel.Matches(labels.Set(job.Labels)):
		return fmt.Errorf("%w: %s has labels %v, the watcher selects %q", ErrNotSelected, r.ref, job.Labels, r.w.sel.String())
	}
	return r.pin(trimJob(job))
}

// pin checks the Job and makes it the one this Wait follows.
func (r *run) pin(job *batchv1.Job) error {
	if !r.w.sel.Matches(labels.Set(job.Spec.Template.Labels)) {
		return fmt.Errorf("%w: the pod template of %s has labels %v, the watcher selects %q", ErrNotSelected, r.ref, job.Spec.Template.Labels, r.w.sel.String())
	}
	if name := r.opts.Container; name != "" {
		cs := job.Spec.Template.Spec.Containers
		if !slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name }) {
			return fmt.Errorf("%w: %s has no container %q", ErrContainerNotFound, r.ref, name)
		}
	}
	r.job = job
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
	if r.opts.Logs != nil {
		lctx, cancel := context.WithCancel(r.w.ctx)
		f := newLogFollower(r.w, r.ref.Namespace, r.opts.Logs, r.opts.LogsSince)
		if r.w.goroutine(func() { f.run(lctx) }) {
			r.logs, r.stopLogs = f, cancel
		} else {
			cancel()
		}
	}
	return nil
}

// state returns the Job and its pods as now known, and which pods are
// gone.
func (r *run) state() (*batchv1.Job, []*corev1.Pod, map[types.UID]bool) {
	uid := r.job.UID
	final, deletedPods := r.wt.deleted(uid)
	if job := r.s.cachedJob(r.ref.Name); job != nil && job.UID == uid {
		r.job = job
	} else if final != nil {
		if r.goneAt.IsZero() {
			r.goneAt = r.clock.Now()
		}
		if final.DeletionTimestamp == nil {
			j := *final
			j.DeletionTimestamp = &metav1.Time{Time: r.goneAt}
			final = &j
		}
		r.job = final
	}
	var pods []*corev1.Pod
	cached := map[types.UID]bool{}
	for _, p := range r.s.cachedPods(r.ref.Name) {
		if podOfJob(p, uid) {
			pods = append(pods, p)
			cached[p.UID] = true
		}
	}
	gone := map[types.UID]bool{}
	for id, p := range deletedPods {
		if !cached[id] && podOfJob(p, uid) {
			pods = append(pods, p)
			gone[id] = true
		}
	}
	sortPods(pods)
	return r.job, pods, gone
}

// evaluate classifies the current state, reports events and feeds the
// log follower. done is true once the result is final.
func (r *run) evaluate(ctx context.Context) (Result, bool) {
	job, pods, gone := r.state()
	pods = mergeListed(pods, r.listed)
	r.pods = pods
	r.report(pods)
	res, done := Classify(job, pods, r.opts.Container)
	r.last = res
	for _, p := range pods {
		r.started = r.started || podStarted(p)
	}
	r.started = r.started || done
	r.feedLogs(pods, gone)
	if !done || r.trustPods || accounted(job, pods, gone) {
		return res, done
	}
	if !r.settleDue {
		if r.settle == nil {
			r.settle = r.clock.NewTimer(settleTime)
		}
		return res, false
	}
	// The pod stream lags (it may be backing off after dropped
	// connections), or the pods are gone: ask the API server.
	r.settleDue = false
	if err := r.listPods(ctx); err != nil {
		r.w.logger.Debug("jobwatch: list pods failed; retrying", "job", r.ref.String(), "err", err)
		r.settle = r.clock.NewTimer(settleTime)
		return res, false
	}
	r.trustPods = true
	return r.evaluate(ctx)
}

// listPods lists the Job's pods directly, by its controller-uid label.
func (r *run) listPods(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, getTimeout)
	defer cancel()
	sel := labels.Set{batchv1.ControllerUidLabel: string(r.job.UID)}.String()
	list, err := r.w.client.CoreV1().Pods(r.ref.Namespace).List(lctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", r.ref, err)
	}
	r.listed = r.listed[:0]
	for i := range list.Items {
		r.listed = append(r.listed, trimPod(&list.Items[i]))
	}
	return nil
}

// mergeListed adds listed pods to pods, or puts them in place of those
// whose cached state is not final yet; the result is sorted.
func mergeListed(pods, listed []*corev1.Pod) []*corev1.Pod {
	if len(listed) == 0 {
		return pods
	}
	byUID := map[types.UID]int{}
	for i, p := range pods {
		byUID[p.UID] = i
	}
	for _, l := range listed {
		i, ok := byUID[l.UID]
		switch {
		case !ok:
			pods = append(pods, l)
		case !podFinished(pods[i]):
			pods[i] = l
		}
	}
	sortPods(pods)
	return pods
}

// accounted reports whether the pods explain the Job's end: at least
// its succeeded and failed counts, and at least one such pod once it has
// succeeded or failed (the Job controller may set SuccessCriteriaMet or
// FailureTarget before it counts), so that their final states have
// arrived.
func accounted(job *batchv1.Job, pods []*corev1.Pod, gone map[types.UID]bool) bool {
	var succeeded, failed int32
	for _, p := range pods {
		switch {
		case p.Status.Phase == corev1.PodSucceeded:
			succeeded++
		case p.Status.Phase == corev1.PodFailed || gone[p.UID] || p.DeletionTimestamp != nil:
			failed++
		}
	}
	end := jobEnd(job)
	wantSucceeded, wantFailed := job.Status.Succeeded, job.Status.Failed
	if end.succeeded {
		wantSucceeded = max(wantSucceeded, 1)
	}
	if end.failed {
		wantFailed = max(wantFailed, 1)
	}
	return succeeded >= wantSucceeded && failed >= wantFailed
}

// newest returns the newest pod of the Job as last seen, or nil.
func (r *run) newest() *corev1.Pod {
	return newestPod(r.pods)
}

func invalidImage(pod *corev1.Pod) bool {
	if pod == nil {
		return false
	}
	_, ok := waitingWith(pod, func(reason string) bool { return reason == "InvalidImageName" })
	return ok
}

// report sends new pod phases to the event sink.
func (r *run) report(pods []*corev1.Pod) {
	if r.events == nil {
		return
	}
	now := r.clock.Now()
	for _, p := range r.wt.takeSnaps() {
		if podOfJob(p, r.job.UID) {
			r.events.observe(p.UID, podEvent(r.ref.Name, p, r.opts.Container, now))
		}
	}
	for _, p := range pods {
		r.events.observe(p.UID, podEvent(r.ref.Name, p, r.opts.Container, now))
	}
}

func (r *run) feedLogs(pods []*corev1.Pod, gone map[types.UID]bool) {
	if r.logs == nil {
		return
	}
	targets := make([]logTarget, 0, len(pods))
	for _, p := range pods {
		name := runContainer(p, r.opts.Container)
		s := containerStatus(p, name)
		ready := podStarted(p) || (s != nil && (s.State.Running != nil || s.State.Terminated != nil))
		targets = append(targets, logTarget{pod: p.Name, uid: p.UID, container: name, ready: ready, done: podFinished(p) || gone[p.UID]})
	}
	r.logs.update(targets, false)
}

// diagnose explains a pod that has not started: from its status and the
// Job's and pod's events.
func (r *run) diagnose(ctx context.Context) Result {
	pod := r.newest()
	ectx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	stop := context.AfterFunc(r.w.ctx, cancel)
	defer stop()
	events, err := listEvents(ectx, r.w.client, r.job, pod)
	if err != nil {
		r.w.logger.Warn("jobwatch: could not list events for a diagnosis", "job", r.ref.String(), "err", err)
	}
	res := r.last
	res.Outcome, res.Diagnosis = diagnose(pod, events)
	res.Reason, res.Message = res.Diagnosis.Reason, res.Diagnosis.Message
	res.FinishedAt = r.clock.Now()
	return res
}

// finish lets the log follower write the rest and returns res.
func (r *run) finish(ctx context.Context, res Result) Result {
	if log := r.w.logger; log.Enabled(ctx, slog.LevelDebug) {
		var pods []string
		for _, p := range r.pods {
			s := containerStatus(p, runContainer(p, r.opts.Container))
			pods = append(pods, fmt.Sprintf("%s:%s:rv%s:terminated=%v", p.Name, p.Status.Phase, p.ResourceVersion, s != nil && s.State.Terminated != nil))
		}
		var counts string
		if r.job != nil {
			counts = fmt.Sprintf("succeeded=%d failed=%d rv=%s", r.job.Status.Succeeded, r.job.Status.Failed, r.job.ResourceVersion)
		}
		log.Debug("jobwatch: run ended", "job", r.ref.String(), "outcome", res.Outcome.String(), "exitCode", res.ExitCode, "jobStatus", counts, "pods", pods, "listed", len(r.listed))
	}
	if r.logs == nil {
		return res
	}
	r.logs.update(nil, true)
	select {
	case <-r.logs.done:
	case <-ctx.Done():
	case <-r.w.ctx.Done():
	}
	r.stopLogs()
	<-r.logs.done
	res.LastLogTime = r.logs.last
	return res
}

// abort stops the log follower and returns what is known.
func (r *run) abort() Result {
	if r.logs != nil {
		r.stopLogs()
		<-r.logs.done
		r.last.LastLogTime = r.logs.last
	}
	res := r.last
	res.Outcome = Unknown
	return res
}

package jobwatch

import (
	"context"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// How a Wait reads the state of its Job and decides when it has ended.

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
			if p.DeletionTimestamp == nil {
				// Gone without a deletion seen: mark it, as for the Job,
				// so that Classify knows it vanished.
				c := *p
				c.DeletionTimestamp = &metav1.Time{Time: r.clock.Now()}
				p = &c
			}
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
	r.pods, r.gone = pods, gone
	r.report(pods)
	res, done := Classify(job, pods, r.opts.Container)
	r.last = res
	for _, p := range pods {
		r.started = r.started || (podStarted(p) && !r.old[p.UID])
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
// its succeeded and failed counts, with the pods it has not counted yet,
// and at least one such pod once it has
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
	// The Job controller sets FailureTarget (or SuccessCriteriaMet) in the
	// same update that lists the pods it has yet to count.
	if u := job.Status.UncountedTerminatedPods; u != nil {
		wantSucceeded += int32(len(u.Succeeded))
		wantFailed += int32(len(u.Failed))
	}
	if end.succeeded {
		wantSucceeded = max(wantSucceeded, 1)
	}
	if end.failed {
		wantFailed = max(wantFailed, 1)
	}
	return succeeded >= wantSucceeded && failed >= wantFailed
}

// newest returns the newest pod of the Job as last seen, or nil; pods
// from before a suspension that followed their start do not count.
func (r *run) newest() *corev1.Pod {
	return newestPod(r.fresh())
}

// fresh returns the Job's pods as last seen, less those from before a
// suspension that followed their start (see queue).
func (r *run) fresh() []*corev1.Pod {
	if len(r.old) == 0 {
		return r.pods
	}
	var pods []*corev1.Pod
	for _, p := range r.pods {
		if !r.old[p.UID] {
			pods = append(pods, p)
		}
	}
	return pods
}

func invalidImage(pod *corev1.Pod) bool {
	if pod == nil {
		return false
	}
	_, ok := waitingWith(pod, func(reason string) bool { return reason == "InvalidImageName" })
	return ok
}

// createStuck reports whether the Job controller has tried to create the
// Job's pod and has none to show for it: it has synced the Job (start
// time set, which it writes in the same status update as the pods it
// made), the Job is neither suspended, finished nor being deleted, and
// it counts no pod of any kind, and none is known. That is the state a
// refused pod creation (FailedCreate) leaves; a healthy Job leaves it
// only for a pod that appears.
func createStuck(job *batchv1.Job, pods []*corev1.Pod) bool {
	st := &job.Status
	return len(pods) == 0 && st.StartTime != nil && !suspended(job) && job.DeletionTimestamp == nil &&
		st.Active == 0 && st.Succeeded == 0 && st.Failed == 0 && (st.Terminating == nil || *st.Terminating == 0) &&
		!jobEnd(job).done()
}

// suspended reports whether the Job is suspended (spec.suspend), as a
// queueing system such as Kueue holds Jobs until they may run.
func suspended(job *batchv1.Job) bool {
	return job.Spec.Suspend != nil && *job.Spec.Suspend
}

// Bounds of the back-off between two looks at a stuck Job's events.
const (
	createCheckFirst = time.Second
	createCheckMax   = 30 * time.Second
)

// cannotCreate looks, while the Job's pod creation is stuck, at the
// Job's events for a FailedCreate that retries will not get past, and
// returns the CannotCreatePod Result if it finds one. It lists the Job's
// events at once when the Job becomes stuck, then with a back-off from
// createCheckFirst to createCheckMax while it stays so; a healthy Job
// costs no request.
func (r *run) cannotCreate(ctx context.Context, pods []*corev1.Pod) (Result, bool) {
	if r.started || !createStuck(r.job, pods) {
		r.createWait = 0
		return Result{}, false
	}
	if r.createTimer != nil || (r.createWait > 0 && !r.createDue) {
		return Result{}, false
	}
	r.createDue = false
	r.createWait = min(max(2*r.createWait, createCheckFirst), createCheckMax)
	r.createTimer = r.clock.NewTimer(r.createWait)
	lctx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	events, err := listEvents(lctx, r.w.client, r.job, nil)
	if err != nil {
		r.w.logger.Debug("jobwatch: list the events of a Job without pods failed; retrying", "job", r.ref.String(), "err", err)
		return Result{}, false
	}
	for _, e := range slices.Backward(events) {
		if e.Reason != failedCreateReason {
			continue
		}
		d := &Diagnosis{Reason: e.Reason, Message: e.Message, Events: events}
		if !createCause(d, e.Message) {
			return Result{}, false // may pass on a retry; judged at the pod start timeout
		}
		res := r.last
		res.Outcome, res.Diagnosis, res.Reason, res.Message = CannotCreatePod, d, d.Reason, d.Message
		res.FinishedAt = r.clock.Now()
		return res, true
	}
	return Result{}, false
}

// queue pauses the pod start timeout while the Job is suspended before
// any of its pods started, and starts it afresh, in full, when the Job is
// resumed. A Job suspended again after its pods started (Kueue preempted
// it, and deletes its pods) is queued again: those pods are old, and the
// pod start timeout waits for its next resume, as for its first.
func (r *run) queue() {
	if r.started && suspended(r.job) {
		if r.old == nil {
			r.old = map[types.UID]bool{}
		}
		for _, p := range r.pods {
			r.old[p.UID] = true
		}
		r.started = false
	}
	switch {
	case r.started:
	case suspended(r.job):
		if r.podStart != nil {
			r.podStart.Stop()
			r.podStart = nil
		}
		r.podStartPassed, r.queued = false, true
	case r.queued:
		r.queued = false
		if d := r.opts.podStartTimeout(); d > 0 {
			r.podStart = r.clock.NewTimer(d)
		}
	}
}

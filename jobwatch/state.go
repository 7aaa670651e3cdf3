package jobwatch

import (
	"context"
	"fmt"

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

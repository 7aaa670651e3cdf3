package jobwatch

import (
	"context"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// How a Wait finds and pins the Job it follows.

// find looks for the Job in the cache; after notCachedGrace without it,
// it asks the API server whether the Job exists at all, unless the Job
// stream is still busy delivering (a burst of creates lags it), which it
// trusts for up to maxNotCached: a GET per run would double a burst's
// requests.
func (r *run) find(ctx context.Context) error {
	if job := r.s.cachedJob(r.ref.Name); job != nil {
		return r.pin(ctx, job)
	}
	now := r.clock.Now()
	if r.findSince.IsZero() {
		r.findSince = now
	}
	if r.ask && r.s.lws[0].busy(notCachedGrace) && now.Sub(r.findSince) < maxNotCached {
		r.ask = false
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
	return r.pin(ctx, trimJob(job))
}

// pin checks the Job and makes it the one this Wait follows.
func (r *run) pin(ctx context.Context, job *batchv1.Job) error {
	if !r.w.sel.Matches(labels.Set(job.Spec.Template.Labels)) {
		return fmt.Errorf("%w: the pod template of %s lacks labels matching %q, so its pods cannot be seen", ErrNotSelected, r.ref, r.w.sel.String())
	}
	if name := r.opts.Container; name != "" {
		cs := job.Spec.Template.Spec.Containers
		if !slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name }) {
			return fmt.Errorf("%w: %s has no container %q", ErrContainerNotFound, r.ref, name)
		}
	}
	r.job = job
	r.followQueue()
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
	if r.opts.Logs != nil {
		lctx, cancel := r.w.logContext(ctx)
		f := newLogFollower(r.w, r.ref.Namespace, r.opts.Logs, r.opts.LogsSince, r.opts.logTailLines())
		if r.w.goroutine(func() { f.run(lctx) }) {
			r.logs, r.stopLogs = f, cancel
		} else {
			cancel()
		}
	}
	return nil
}

package worker

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/fleet"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// goneRun is a run whose Job vanished (deleted from outside) before its
// Result was delivered: if its owner is gone too, no replica follows it,
// and one of the others must deliver it.
type goneRun struct {
	c   *clusterParts
	job *batchv1.Job // as last seen
	at  time.Time    // when it was first missed
	// witnesses are the members live then: only they can have seen it,
	// so one of them delivers it (a replica that joined since never
	// will).
	witnesses []string
}

// notice compares the undelivered Jobs of c seen now (jobs, read without
// error) with those seen at the last look, and keeps each that vanished.
// A Job made and deleted between two looks is not seen: its owner, if it
// lived to see the deletion, delivers it. Only the takeover loop calls
// it.
func (f *fleetState) notice(c *clusterParts, jobs []*batchv1.Job, live []string, now time.Time) {
	present := map[string]bool{}
	undelivered := map[string]*batchv1.Job{}
	for _, job := range jobs {
		key := fleetKey(c, job.Namespace, job.Labels[manifest.LabelRunID])
		present[key] = true
		if _, owned := job.Annotations[jobcreate.AnnotationOwner]; owned && job.Annotations[AnnotationDelivered] == "" {
			undelivered[key] = job
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, job := range f.seen[c.name] {
		if !present[key] {
			if _, ok := f.gone[key]; !ok {
				f.gone[key] = goneRun{c: c, job: job, at: now, witnesses: live}
			}
		}
	}
	f.seen[c.name] = undelivered
}

// deliverGone delivers each run whose Job vanished undelivered and that
// no live replica follows: its owner is gone and fleet.Owner, among the
// live members that saw it vanish, gives it to m; or it is m's own and
// nothing here follows it. The Result is what the
// Job said when last seen: Deleted (Cancelled if it was cancelled), or
// the outcome of a Job that had finished, without its exit code (its pods
// went with it). A run whose owner is live is left to the owner, which
// follows it to the deletion, and forgotten after two LeaseDurations.
func (f *fleetState) deliverGone(ctx context.Context, m *fleet.Member, live []string, now time.Time) {
	keep := 2 * cmpDuration(f.opts.LeaseDuration, 15*time.Second)
	f.mu.Lock()
	gone := maps.Clone(f.gone)
	f.mu.Unlock()
	forget := func(key string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.gone, key)
	}
	for key, g := range gone {
		owner, runID := g.job.Annotations[jobcreate.AnnotationOwner], g.job.Labels[manifest.LabelRunID]
		witnesses := slices.DeleteFunc(slices.Clone(g.witnesses), func(name string) bool { return !slices.Contains(live, name) })
		// Left to its live owner, or to the witness the hash picks; kept
		// a while in case this replica is given it later.
		if owner != m.Name() && (slices.Contains(live, owner) || fleet.Owner(witnesses, runID) != m.Name()) {
			if now.Sub(g.at) > keep {
				forget(key)
			}
			continue
		}
		if !f.hold(key) {
			forget(key) // followed here: the follower delivers it
			continue
		}
		err := f.deliverVanished(ctx, g)
		f.unhold(key)
		if err == nil || ctx.Err() != nil {
			forget(key)
		}
	}
}

// deliverVanished hands the Sink the Result of g's run.
func (f *fleetState) deliverVanished(ctx context.Context, g goneRun) error {
	w := f.w
	job := g.job.DeepCopy()
	if job.DeletionTimestamp == nil {
		job.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	}
	pid, err := g.c.parts.Identity.PID(ctx, job.Namespace, job.Name)
	if err != nil {
		w.log.WarnContext(ctx, "deliver a run whose Job is gone", "run", job.Labels[manifest.LabelRunID], "error", err)
		return err
	}
	res := Result{PID: pid, RunID: job.Labels[manifest.LabelRunID], Cluster: g.c.name, CreatedAt: job.CreationTimestamp.Time}
	res.Result, _ = jobwatch.Classify(job, nil, w.opts.Prepare.Container)
	if res.Outcome == jobwatch.Deleted || res.Outcome == jobwatch.Cancelled {
		res.NoExitCode = "the Job was deleted while no replica followed it"
	}
	// Fenced since: the new owner delivers it.
	if err := fenced(ctx, context.Cause(ctx)); errors.Is(err, ErrNotMember) {
		return err
	}
	if err := w.opts.Fleet.Sink.Record(ctx, res); err != nil {
		w.log.WarnContext(ctx, "the fleet's Sink did not record the Result of a run whose Job is gone", "run", res.RunID, "error", err)
		return err
	}
	w.log.InfoContext(ctx, "delivered a run whose Job was deleted while no replica followed it",
		"run", res.RunID, "job", job.Namespace+"/"+job.Name, "outcome", res.Outcome.String())
	return nil
}

// seenUndelivered is how many undelivered Jobs the last look saw, in
// every cluster.
func (f *fleetState) seenUndelivered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, jobs := range f.seen {
		n += len(jobs)
	}
	return n
}

package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// DefaultForceAfter is CancelOptions.ForceAfter's default.
const DefaultForceAfter = 30 * time.Second

// Timing of Cancel's own reads.
const (
	// cancelPoll is how often Cancel reads whether the Job, then its
	// pods, are gone.
	cancelPoll = 500 * time.Millisecond
	// leftTimeout bounds the reads that say what is left once the
	// caller's ctx has ended.
	leftTimeout = 5 * time.Second
	// markTries bounds the marks that meet a Job changed since it was
	// read (the Job controller updates its status as pods change).
	markTries = 10
)

// CancelOptions configure one Cancel or CancelRun. The zero value works:
// the pods' own grace period, no forced deletion.
type CancelOptions struct {
	// Grace is the grace period the run's pods get to stop, rounded up
	// to whole seconds; 0 stops them at once. The garbage collector
	// deletes a Job's pods with their own grace, never the Job delete's,
	// so Cancel deletes the pods itself with this one (it can shorten a
	// grace period already running, never lengthen it); that needs the
	// delete verb on pods, which Rules does not grant (without it, Cancel
	// logs a warning and the pods keep their own grace). Default: nil,
	// each pod's own spec.terminationGracePeriodSeconds (30 s unless the
	// template says otherwise), and Cancel deletes no pod itself.
	Grace *time.Duration
	// Force deletes, with a grace period of 0 (kubectl delete --force),
	// the pods still there ForceAfter after their grace period ended: a
	// node that does not answer, a kubelet that never confirms. The
	// containers may then still run on the node. Needs the delete verb
	// on pods, as Grace does. Default: false, Cancel waits for them until
	// its ctx ends.
	Force bool
	// ForceAfter is how long after the grace period Force waits before
	// it deletes the pods left; it then does so again every ForceAfter
	// while pods are left. Default: 0, DefaultForceAfter (30 s).
	ForceAfter time.Duration
}

func (o CancelOptions) validate() error {
	var errs []error
	if o.Grace != nil && *o.Grace < 0 {
		errs = append(errs, fmt.Errorf("CancelOptions.Grace is negative (%s)", *o.Grace))
	}
	if o.ForceAfter < 0 {
		errs = append(errs, fmt.Errorf("CancelOptions.ForceAfter is negative (%s)", o.ForceAfter))
	}
	return errors.Join(errs...)
}

func (o CancelOptions) forceAfter() time.Duration {
	if o.ForceAfter == 0 {
		return DefaultForceAfter
	}
	return o.ForceAfter
}

// ErrCancelIncomplete is matched, through errors.Is, by a
// [*CancelIncompleteError].
var ErrCancelIncomplete = errors.New("the cancelled run's Job or pods are still there")

// CancelIncompleteError is the error of Cancel and CancelRun when their
// ctx ends before the run's Job and pods are gone. The Job is marked and
// its deletion has begun: it goes on without Cancel, and a later Cancel
// of the same run waits for it again. It matches ErrCancelIncomplete, and
// unwraps to ctx's error.
type CancelIncompleteError struct {
	// PID names the Job; RunID is its run's ID.
	PID   clusterid.PID
	RunID string
	// Job is the Job's name while it is still there (its deletion waits
	// for its pods), empty once it is gone.
	Job string
	// Pods are the Job's pods still there, each as "name (Terminating)"
	// or, for one whose deletion has not begun, "name (Phase)".
	Pods []string
	// Err is ctx's error, joined with the error of the reads that found
	// what is left, if they failed (Job and Pods are then what the last
	// successful reads saw).
	Err error
}

func (e *CancelIncompleteError) Error() string {
	var left []string
	if e.Job != "" {
		left = append(left, "Job "+e.Job+" (deleting)")
	}
	if len(e.Pods) > 0 {
		left = append(left, "pods "+strings.Join(e.Pods, ", "))
	}
	if len(left) == 0 {
		left = append(left, "nothing known")
	}
	return fmt.Sprintf("worker: cancel %s (run %s): %v before the run was gone; left: %s", e.PID, e.RunID, e.Err, strings.Join(left, "; "))
}

// Is reports whether target is ErrCancelIncomplete.
func (e *CancelIncompleteError) Is(target error) bool { return target == ErrCancelIncomplete }

// Unwrap returns Err.
func (e *CancelIncompleteError) Unwrap() error { return e.Err }

// Cancel stops the run whose Job pid names, from any Worker with this
// Worker's Options.Name (the Job must carry its labels, else a
// *NotManagedError), and returns once the Job and its pods are gone:
//
//  1. It marks the Job with jobwatch.AnnotationCancelled, whose value is
//     reason (a merge patch that also names the Job's resourceVersion, so
//     that of two Cancels the first reason stays; a Job already marked is
//     not patched again).
//  2. It deletes the Job with foreground propagation (the Job stays,
//     being deleted, until its pods are gone) and, when opts.Grace is
//     set, deletes the Job's pods with that grace period.
//  3. It reads the Job every half second until it is gone, then lists
//     its pods to confirm they are gone too. With opts.Force, the pods
//     still there opts.ForceAfter after their grace period ended are
//     deleted with a grace period of 0.
//
// Whoever follows the run (Run or Attach, on any Worker) gets Outcome
// jobwatch.Cancelled, Reason jobwatch.ReasonCancelled and Message reason
// (jobwatch.DefaultCancelMessage when empty), attributed to the caller
// (jobwatch.FaultCaller), as soon as the Job's deletion begins. (An
// Attach that begins once the Job is gone finds nothing to read and
// reports jobwatch.Deleted.)
//
// A run that has already finished (its Job Complete or Failed, or on its
// way to it) is left as it is and Cancel returns nil at once: its Outcome
// stands, and its Job stays for its Result to be read until its TTL;
// Kill deletes it.
//
// Idempotent: a Cancel of a run whose cancel is under way (marked, being
// deleted) waits for the same end; one of a run whose Job is gone returns
// nil, as the first did, from any Worker of this Name: the first Cancel
// leaves an Event of the Job in its namespace (reason
// jobwatch.ReasonCancelled, the Worker's and the run's labels), which the
// cluster keeps for its --event-ttl (an hour by default), and each Worker
// also remembers its own cancels for an hour (at most 10,000). A Job that
// does not exist and was not cancelled is an error matching
// clusterid.ErrNotFound that also wraps the API's 404.
//
// When ctx ends first, Cancel returns a *CancelIncompleteError saying
// what is left (read with up to 5 s more); the deletion goes on without
// it.
//
// Compare Kill, which deletes the Job and returns at once: the follower
// then reports jobwatch.Deleted (the infrastructure's fault), and
// nothing waits for the pods.
//
// Requests: reading the cluster UID (once per cluster), a GET, a PATCH
// and a DELETE of the Job; with opts.Grace, a LIST of its pods and a
// DELETE each; then a GET of the Job every 500 ms while it is being
// deleted (this polls rather than shares the Worker's watch streams: a
// cancel is rare and short), a LIST of its pods once it is gone; with
// opts.Force, a LIST and a DELETE per pod left at each escalation. Each
// request but the polls is retried on what retry.Retriable calls
// transient under Options.Retry, never past ctx; a poll that fails
// transiently is made again at the next tick, and one refused (a 4xx,
// Forbidden say) ends Cancel with that error.
//
// Permissions: get, patch and delete on jobs, list and delete on pods,
// create and list on events, which Rules grants.
func (w *Worker) Cancel(ctx context.Context, pid clusterid.PID, reason string, opts CancelOptions) error {
	if err := errors.Join(pid.Validate(), opts.validate()); err != nil {
		return fmt.Errorf("worker: cancel: %w", err)
	}
	c, release, err := w.clusters.forPID(ctx, pid, nil)
	if err != nil {
		return fmt.Errorf("worker: cancel %s: %w", pid, err)
	}
	defer release()
	job, err := w.getToCancel(ctx, c, pid)
	switch {
	case apierrors.IsNotFound(err) && (w.cancelled.has(pidKey(pid)) || w.cancelledIn(ctx, c, pid.Namespace, "", pid.Name)):
		w.log.DebugContext(ctx, "the cancelled run's Job is gone", "pid", pid.String())
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("worker: cancel %s: %w: %w", pid, clusterid.ErrNotFound, err)
	case err != nil:
		return fmt.Errorf("worker: cancel %s: %w", pid, err)
	}
	return w.cancelJob(ctx, c, pid, job, reason, opts)
}

// CancelRun cancels each Job of the run runID, as Cancel does, where List
// looks: in every cluster the Worker knows and, in each, the namespaces
// of Options.Namespaces (or the Cluster's). It finds them with one LIST
// per namespace, by the run ID label and this Worker's labels, marks and
// deletes them all, then waits for them all to be gone. The errors of
// each are joined; a *CancelIncompleteError per Job that is left.
//
// A run with no Job there is an error matching clusterid.ErrNotFound,
// unless this Worker has cancelled it (by CancelRun, or by Cancel of
// its Job): then nil, as for Cancel.
func (w *Worker) CancelRun(ctx context.Context, runID, reason string, opts CancelOptions) error {
	if err := errors.Join(validLabelValue(runID), opts.validate()); err != nil {
		return fmt.Errorf("worker: cancel run: %w", err)
	}
	all, release := w.clusters.all()
	defer release()
	type found struct {
		c   *clusterParts
		job *batchv1.Job
	}
	var jobs []found
	var errs []error
	for _, c := range all {
		list, err := w.runJobs(ctx, c, runID)
		if err != nil {
			errs = append(errs, err)
		}
		for i := range list {
			jobs = append(jobs, found{c, &list[i]})
		}
	}
	if len(jobs) == 0 {
		switch {
		case len(errs) > 0:
			return fmt.Errorf("worker: cancel run %s: %w", runID, errors.Join(errs...))
		case w.cancelled.has(runKey(w.opts.Name, runID)):
			return nil
		}
		for _, c := range all {
			nss, _ := w.namespaces(c)
			for _, ns := range nss {
				if w.cancelledIn(ctx, c, ns, runID, "") {
					return nil
				}
			}
		}
		return fmt.Errorf("worker: cancel run %s: %w: no Job of worker %q has that run ID", runID, clusterid.ErrNotFound, w.opts.Name)
	}
	results := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, f := range jobs {
		wg.Go(func() {
			pid, err := f.c.parts.Identity.PID(ctx, f.job.Namespace, f.job.Name)
			if err != nil {
				results[i] = fmt.Errorf("worker: cancel run %s: PID of Job %s/%s%s: %w", runID, f.job.Namespace, f.job.Name, inCluster(f.c), err)
				return
			}
			results[i] = w.cancelJob(ctx, f.c, pid, f.job, reason, opts)
		})
	}
	wg.Wait()
	return errors.Join(append(errs, results...)...)
}

// runJobs lists the Jobs of run runID in every namespace of c.
func (w *Worker) runJobs(ctx context.Context, c *clusterParts, runID string) ([]batchv1.Job, error) {
	nss, err := w.namespaces(c)
	if err != nil {
		return nil, fmt.Errorf("worker: cancel run %s%s: %w", runID, inCluster(c), err)
	}
	req, err := labels.NewRequirement(manifest.LabelRunID, selection.Equals, []string{runID})
	if err != nil {
		return nil, err
	}
	sel := w.selector().Add(*req)
	var jobs []batchv1.Job
	var errs []error
	for _, ns := range nss {
		jc, err := c.jobs(ns)
		if err != nil {
			return nil, err
		}
		list, err := retry.Value(ctx, w.retry(ctx, "list the Jobs of a run to cancel in namespace "+ns, ""), func(ctx context.Context) (*batchv1.JobList, error) {
			return jc.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("worker: cancel run %s: list Jobs in namespace %s%s: %w", runID, ns, inCluster(c), err))
			continue
		}
		for _, j := range list.Items {
			if sel.Matches(labels.Set(j.Labels)) { // a fake client may not select
				jobs = append(jobs, j)
			}
		}
	}
	return jobs, errors.Join(errs...)
}

// getToCancel returns pid's Job in c, a 404 if there is none, or a
// *NotManagedError if it is not this Worker's.
func (w *Worker) getToCancel(ctx context.Context, c *clusterParts, pid clusterid.PID) (*batchv1.Job, error) {
	jobs, err := c.jobs(pid.Namespace)
	if err != nil {
		return nil, err
	}
	job, err := retry.Value(ctx, w.retry(ctx, "get the Job to cancel", pid.String()), func(ctx context.Context) (*batchv1.Job, error) {
		return jobs.Get(ctx, pid.Name, metav1.GetOptions{})
	})
	if err != nil {
		return nil, err
	}
	if err := w.checkManaged(pid, job); err != nil {
		return nil, err
	}
	return job, nil
}

// cancelJob marks and deletes job, this Worker's, and waits until it and
// its pods are gone.
func (w *Worker) cancelJob(ctx context.Context, c *clusterParts, pid clusterid.PID, job *batchv1.Job, reason string, opts CancelOptions) error {
	runID := job.Labels[manifest.LabelRunID]
	if res, finished := jobwatch.Classify(job, nil, ""); finished && res.Outcome != jobwatch.Deleted && res.Outcome != jobwatch.Cancelled {
		w.log.InfoContext(ctx, "not cancelled: the run has already finished", "run", runID, "pid", pid.String(), "cluster", c.name, "outcome", res.Outcome.String())
		return nil
	}
	pods, err := c.pods(pid.Namespace)
	if err != nil {
		return fmt.Errorf("worker: cancel %s: %w", pid, err)
	}
	cj := &cancelling{w: w, c: c, pid: pid, runID: runID, job: job, pods: pods, opts: opts}
	if err := cj.mark(ctx, reason); err != nil {
		return fmt.Errorf("worker: cancel %s: mark the Job: %w", pid, err)
	}
	if _, marked := job.Annotations[jobwatch.AnnotationCancelled]; !marked {
		cj.tombstone(ctx, reason) // else whoever marked it left one
	}
	if err := cj.delete(ctx); err != nil {
		return fmt.Errorf("worker: cancel %s: delete the Job: %w", pid, err)
	}
	w.cancelled.add(pidKey(pid), runKey(w.opts.Name, runID))
	w.log.InfoContext(ctx, "cancelling a run", "run", runID, "pid", pid.String(), "cluster", c.name, "reason", reason)
	if err := cj.wait(ctx); err != nil {
		return err
	}
	w.log.InfoContext(ctx, "cancelled a run: its Job and pods are gone", "run", runID, "pid", pid.String(), "cluster", c.name)
	return nil
}

// pods returns the pods of namespace ns in c.
func (c *clusterParts) pods(ns string) (corev1client.PodInterface, error) {
	if c.client == nil {
		return nil, errors.New("no client for pods: New was given none")
	}
	return c.client.CoreV1().Pods(ns), nil
}

// cancelling is one Job being cancelled.
type cancelling struct {
	w     *Worker
	c     *clusterParts
	pid   clusterid.PID
	runID string
	job   *batchv1.Job // as last read
	pods  corev1client.PodInterface
	opts  CancelOptions

	gone      bool      // the Job is gone
	deletedAt time.Time // when Cancel deleted it
	forced    map[types.UID]bool
	left      []string // the pods last listed, described
}

// mark sets AnnotationCancelled on the Job, unless it is set, on
// condition that the Job has not changed since it was read; it reads the
// Job again when it has. A Job gone meanwhile is left to wait.
func (cj *cancelling) mark(ctx context.Context, reason string) error {
	jobs, err := cj.c.jobs(cj.pid.Namespace)
	if err != nil {
		return err
	}
	p := cj.w.retry(ctx, "mark the Job cancelled", cj.pid.String())
	for range markTries {
		if _, ok := cj.job.Annotations[jobwatch.AnnotationCancelled]; ok {
			return nil
		}
		patch := fmt.Appendf(nil, `{"metadata":{"resourceVersion":%q,"annotations":{%q:%q}}}`, cj.job.ResourceVersion, jobwatch.AnnotationCancelled, reason)
		got, err := retry.Value(ctx, p, func(ctx context.Context) (*batchv1.Job, error) {
			return jobs.Patch(ctx, cj.job.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		})
		switch {
		case err == nil:
			cj.job = got
			return nil
		case apierrors.IsNotFound(err):
			cj.gone = true
			return nil
		case !apierrors.IsConflict(err):
			return err
		}
		// Changed since read (or marked by an attempt whose answer was
		// lost): read it again.
		got, err = retry.Value(ctx, p, func(ctx context.Context) (*batchv1.Job, error) {
			return jobs.Get(ctx, cj.job.Name, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err), err == nil && got.UID != cj.job.UID:
			cj.gone = true
			return nil
		case err != nil:
			return err
		}
		cj.job = got
	}
	return fmt.Errorf("the Job kept changing: %d tries", markTries)
}

// delete deletes the Job, foreground and on condition that it is the Job
// marked, and, with a Grace, its pods.
func (cj *cancelling) delete(ctx context.Context) error {
	cj.deletedAt = time.Now()
	if cj.gone {
		return nil
	}
	jobs, err := cj.c.jobs(cj.pid.Namespace)
	if err != nil {
		return err
	}
	opts := metav1.DeleteOptions{
		PropagationPolicy:  new(metav1.DeletePropagationForeground),
		Preconditions:      &metav1.Preconditions{UID: &cj.job.UID},
		GracePeriodSeconds: graceSeconds(cj.opts.Grace),
	}
	err = cj.w.retry(ctx, "delete the cancelled Job", cj.pid.String()).Do(ctx, func(ctx context.Context) error {
		return jobs.Delete(ctx, cj.job.Name, opts)
	})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err): // gone, or another Job has the name
		cj.gone = true
	case err != nil:
		return err
	}
	if cj.opts.Grace != nil {
		cj.deletePods(ctx, graceSeconds(cj.opts.Grace), "delete a cancelled run's pod with the grace period asked for")
	}
	return nil
}

// wait reads the Job, then its pods, until they are gone, forcing the
// deletion of pods left past their grace when asked to.
func (cj *cancelling) wait(ctx context.Context) error {
	escalate := cj.deletedAt.Add(cj.grace() + cj.opts.forceAfter())
	tick := time.NewTicker(cancelPoll)
	defer tick.Stop()
	for {
		done, err := cj.look(ctx)
		switch {
		case done:
			return nil
		case err != nil && ctx.Err() == nil && !retry.Retriable(err):
			return fmt.Errorf("worker: cancel %s: %w", cj.pid, err)
		}
		if cj.opts.Force && !time.Now().Before(escalate) {
			cj.deletePods(ctx, new(int64(0)), "force the deletion of a cancelled run's pod left past its grace period")
			escalate = time.Now().Add(cj.opts.forceAfter())
		}
		select {
		case <-ctx.Done():
			return cj.incomplete(ctx)
		case <-tick.C:
		}
	}
}

// look reads whether the Job is gone and, once it is, whether its pods
// are.
func (cj *cancelling) look(ctx context.Context) (done bool, err error) {
	if !cj.gone {
		jobs, err := cj.c.jobs(cj.pid.Namespace)
		if err != nil {
			return false, err
		}
		got, err := jobs.Get(ctx, cj.job.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err), err == nil && got.UID != cj.job.UID:
			cj.gone = true
		case err != nil:
			return false, err
		default:
			return false, nil
		}
	}
	pods, err := cj.listPods(ctx)
	if err != nil {
		return false, err
	}
	return len(pods) == 0, nil
}

// listPods lists the Job's pods, by its controller-uid label, and
// describes them in left.
func (cj *cancelling) listPods(ctx context.Context) ([]corev1.Pod, error) {
	sel := labels.Set{batchv1.ControllerUidLabel: string(cj.job.UID)}.String()
	list, err := cj.pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	cj.left = nil
	for _, p := range list.Items {
		state := string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			state = "Terminating"
		}
		cj.left = append(cj.left, fmt.Sprintf("%s (%s)", p.Name, state))
	}
	return list.Items, nil
}

// deletePods deletes the Job's pods with grace, each on condition that
// it is the pod listed; a failure is logged, as the garbage collector
// deletes them all the same.
func (cj *cancelling) deletePods(ctx context.Context, grace *int64, what string) {
	pods, err := retry.Value(ctx, cj.w.retry(ctx, "list a cancelled run's pods", cj.pid.String()), cj.listPods)
	if err != nil {
		cj.w.log.WarnContext(ctx, "could not list a cancelled run's pods", "run", cj.runID, "pid", cj.pid.String(), "error", err)
		return
	}
	for _, pod := range pods {
		opts := metav1.DeleteOptions{GracePeriodSeconds: grace, Preconditions: &metav1.Preconditions{UID: &pod.UID}}
		err := cj.w.retry(ctx, what, cj.pid.String()).Do(ctx, func(ctx context.Context) error {
			return cj.pods.Delete(ctx, pod.Name, opts)
		})
		switch {
		case err == nil:
			cj.w.log.InfoContext(ctx, "deleted a cancelled run's pod", "run", cj.runID, "pid", cj.pid.String(), "pod", pod.Name, "grace_seconds", *grace)
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		default:
			cj.w.log.WarnContext(ctx, "could not "+what, "run", cj.runID, "pid", cj.pid.String(), "pod", pod.Name, "error", err)
		}
	}
}

// grace returns the pods' grace period: CancelOptions.Grace, else the
// Job's pod template's, else Kubernetes' default.
func (cj *cancelling) grace() time.Duration {
	if g := cj.opts.Grace; g != nil {
		return *g
	}
	if s := cj.job.Spec.Template.Spec.TerminationGracePeriodSeconds; s != nil {
		return time.Duration(*s) * time.Second
	}
	return corev1.DefaultTerminationGracePeriodSeconds * time.Second
}

// incomplete reads, for up to leftTimeout past ctx's end, what is left,
// and returns it as a *CancelIncompleteError.
func (cj *cancelling) incomplete(ctx context.Context) error {
	e := &CancelIncompleteError{PID: cj.pid, RunID: cj.runID, Err: ctx.Err()}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leftTimeout)
	defer cancel()
	// look lists the pods only once the Job is gone.
	_, err := cj.look(rctx)
	if err == nil && !cj.gone {
		_, err = cj.listPods(rctx)
	}
	if err != nil {
		e.Err = errors.Join(e.Err, fmt.Errorf("read what is left: %w", err))
	}
	if !cj.gone {
		e.Job = cj.job.Name
	}
	e.Pods = cj.left
	return e
}

// graceSeconds is a DeleteOptions.GracePeriodSeconds for d, rounded up;
// nil for nil.
func graceSeconds(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	secs := int64(*d / time.Second)
	if *d%time.Second != 0 {
		secs++
	}
	return &secs
}

// cancelMemory remembers, for one Worker, the Jobs and runs that Cancel
// and CancelRun have deleted, so that a second Cancel of one that is gone
// by then gets the first's answer, nil. It keeps an entry for
// cancelMemoryTTL and at most cancelMemorySize entries, the oldest going
// first.
type cancelMemory struct {
	mu    sync.Mutex
	at    map[string]time.Time // guarded by mu
	order []string             // keys, oldest first; guarded by mu
}

const (
	cancelMemoryTTL  = time.Hour
	cancelMemorySize = 10000
)

func pidKey(pid clusterid.PID) string    { return "pid/" + pid.String() }
func runKey(worker, runID string) string { return "run/" + worker + "/" + runID }

func (m *cancelMemory) add(keys ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil {
		m.at = map[string]time.Time{}
	}
	now := time.Now()
	for _, k := range keys {
		if _, ok := m.at[k]; !ok {
			m.order = append(m.order, k)
		}
		m.at[k] = now
	}
	for len(m.order) > 0 && (len(m.order) > cancelMemorySize || now.Sub(m.at[m.order[0]]) > cancelMemoryTTL) {
		delete(m.at, m.order[0])
		m.order = m.order[1:]
	}
}

func (m *cancelMemory) has(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.at[key]
	return ok && time.Since(at) <= cancelMemoryTTL
}

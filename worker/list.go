package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// Phase is where a listed run's Job stands, read from the Job's status.
// The Job controller updates that status shortly after the pods change, so
// a phase may lag its pods by a moment; Attach gives the exact Outcome.
type Phase string

// Phases of a run's Job.
const (
	// PhasePending: no pod of the Job is ready yet (being created,
	// scheduled, pulling its image, or never started).
	PhasePending Phase = "Pending"
	// PhaseRunning: a pod of the Job is ready.
	PhaseRunning Phase = "Running"
	// PhaseSucceeded: the Job is complete (or met its success criteria).
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the Job failed, or is about to (condition
	// FailureTarget).
	PhaseFailed Phase = "Failed"
	// PhaseSuspended: the Job is suspended (spec.suspend), as a queue
	// such as Kueue leaves it until it may run.
	PhaseSuspended Phase = "Suspended"
	// PhaseDeleting: the Job's deletion has begun.
	PhaseDeleting Phase = "Deleting"
)

// RunInfo describes a run whose Job this Worker manages.
type RunInfo struct {
	// RunID is the run's ID (manifest.LabelRunID).
	RunID string
	// Cluster names the Job's cluster, as Result.Cluster does.
	Cluster string
	// PID names the run's Job.
	PID clusterid.PID
	// Phase is where the Job stands.
	Phase Phase
	// CreatedAt is when the Job was created; Age is how long before the
	// listing that was.
	CreatedAt time.Time
	Age       time.Duration
}

// listPageSize is the page size of List's requests.
const listPageSize = 500

// List returns the runs whose Jobs this Worker manages, in every cluster
// it knows (its own, Options.Clusters, and the clusters of runs it holds
// now) and, in each, the namespaces Options.Namespaces (or the
// Cluster's) names: the Jobs that carry LabelWorker set to Options.Name,
// manifest.LabelManagedBy set to manifest.ManagedBy, and a
// manifest.LabelRunID, selected by the API server. They come oldest
// first. A namespace that cannot be listed is an error naming it and its
// cluster; the runs of the others are still returned.
//
// Each page's LIST (and the cluster UID read) is retried on a transient
// failure (timeouts, 429, 5xx, dropped connections) under Options.Retry,
// for up to its deadline (3 minutes by default) and never past ctx.
func (w *Worker) List(ctx context.Context) ([]RunInfo, error) {
	all, release := w.clusters.all()
	defer release()
	now := time.Now()
	var runs []RunInfo
	var errs []error
	for _, c := range all {
		jobs, err := w.listJobs(ctx, c)
		if err != nil {
			errs = append(errs, err)
		}
		for i := range jobs {
			info, err := w.runInfo(ctx, c, &jobs[i], now)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			runs = append(runs, info)
		}
	}
	slices.SortStableFunc(runs, func(a, b RunInfo) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.Cluster, b.Cluster),
			cmp.Compare(a.PID.Namespace, b.PID.Namespace), cmp.Compare(a.PID.Name, b.PID.Name))
	})
	return runs, errors.Join(errs...)
}

// selector selects the Jobs of this Worker.
func (w *Worker) selector() labels.Selector {
	sel := labels.SelectorFromSet(labels.Set{LabelWorker: w.opts.Name, manifest.LabelManagedBy: manifest.ManagedBy})
	req, _ := labels.NewRequirement(manifest.LabelRunID, selection.Exists, nil) // a valid key, no values
	return sel.Add(*req)
}

// namespaces returns the namespaces List and Sweep look in, in c.
func (w *Worker) namespaces(c *clusterParts) ([]string, error) {
	switch {
	case len(c.namespaces) > 0:
		return c.namespaces, nil
	case len(w.opts.Namespaces) > 0:
		return w.opts.Namespaces, nil
	case w.opts.Namespace != "":
		return []string{w.opts.Namespace}, nil
	}
	cfg, err := w.opts.Template.Render(nil, manifest.RenderOptions{})
	if err != nil {
		return nil, fmt.Errorf("the template with no values gives no namespace to look in (set Options.Namespaces): %w", err)
	}
	if cfg.Namespace == "" {
		return nil, errors.New("the template with no values gives no namespace to look in; set Options.Namespaces")
	}
	return []string{cfg.Namespace}, nil
}

// inCluster names c in an error, unless it is the own cluster with no
// name.
func inCluster(c *clusterParts) string {
	if c.name == "" {
		return ""
	}
	return fmt.Sprintf(" in cluster %q", c.name)
}

// listJobs lists this Worker's Jobs in every namespace of c, a page at a
// time.
func (w *Worker) listJobs(ctx context.Context, c *clusterParts) ([]batchv1.Job, error) {
	nss, err := w.namespaces(c)
	if err != nil {
		return nil, fmt.Errorf("worker: list%s: %w", inCluster(c), err)
	}
	sel := w.selector()
	var jobs []batchv1.Job
	var errs []error
	for _, ns := range nss {
		jc, err := c.jobs(ns)
		if err != nil {
			return nil, err
		}
		opts := metav1.ListOptions{LabelSelector: sel.String(), Limit: listPageSize}
		for {
			list, err := retry.Value(ctx, w.retry(ctx, "list Jobs in namespace "+ns, ""), func(ctx context.Context) (*batchv1.JobList, error) {
				return jc.List(ctx, opts)
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("worker: list Jobs in namespace %s%s: %w", ns, inCluster(c), err))
				break
			}
			for _, j := range list.Items {
				if sel.Matches(labels.Set(j.Labels)) { // a fake client may not select
					jobs = append(jobs, j)
				}
			}
			if list.Continue == "" {
				break
			}
			opts.Continue = list.Continue
		}
	}
	slices.SortStableFunc(jobs, func(a, b batchv1.Job) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time),
			cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return jobs, errors.Join(errs...)
}

// runInfo describes job, of cluster c, as listed at now.
func (w *Worker) runInfo(ctx context.Context, c *clusterParts, job *batchv1.Job, now time.Time) (RunInfo, error) {
	pid, err := c.parts.Identity.PID(ctx, job.Namespace, job.Name)
	if err != nil {
		return RunInfo{}, fmt.Errorf("worker: PID of Job %s/%s%s: %w", job.Namespace, job.Name, inCluster(c), err)
	}
	return RunInfo{
		RunID:     job.Labels[manifest.LabelRunID],
		Cluster:   c.name,
		PID:       pid,
		Phase:     jobPhase(job),
		CreatedAt: job.CreationTimestamp.Time,
		Age:       now.Sub(job.CreationTimestamp.Time),
	}, nil
}

// jobPhase reads a Job's phase from its metadata and status.
func jobPhase(job *batchv1.Job) Phase {
	has := func(t batchv1.JobConditionType) bool {
		return slices.ContainsFunc(job.Status.Conditions, func(c batchv1.JobCondition) bool {
			return c.Type == t && c.Status == corev1.ConditionTrue
		})
	}
	switch {
	case job.DeletionTimestamp != nil:
		return PhaseDeleting
	case has(batchv1.JobComplete), has(batchv1.JobSuccessCriteriaMet):
		return PhaseSucceeded
	case has(batchv1.JobFailed), has(batchv1.JobFailureTarget):
		return PhaseFailed
	case job.Spec.Suspend != nil && *job.Spec.Suspend:
		return PhaseSuspended
	case job.Status.Ready != nil && *job.Status.Ready > 0:
		return PhaseRunning
	default:
		return PhasePending
	}
}

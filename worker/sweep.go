package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientretry "k8s.io/client-go/util/retry"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// DefaultSweepGrace is how old the Job of an unknown run must be before
// Sweep deletes it, when SweepOptions.Grace is zero.
const DefaultSweepGrace = 10 * time.Minute

// SweepOptions configure a Sweep. The zero value works: a grace of
// DefaultSweepGrace, attaches with zero AttachOptions, Results dropped.
type SweepOptions struct {
	// Grace spares the Jobs of unknown runs younger than it, by creation
	// time: a scheduler may have started a run and not yet stored its
	// ID. Default: DefaultSweepGrace; negative: none, every unknown run's
	// Job is deleted.
	Grace time.Duration
	// Attach gives the options to attach to a known run with: its values,
	// log writer and the LogsSince saved for it. Its OnResult is not
	// used; Ended takes its place. Default: nil, zero AttachOptions.
	Attach func(RunInfo) AttachOptions
	// Ended is called once for each run Sweep attached to, from the
	// goroutine that followed it, with the run's Result, or with the error
	// that ended the attach early (ctx ended, the Worker closed; the Result
	// then holds what was known). Calls for different runs may be
	// concurrent. After a Result, a nil return counts as the Result
	// recorded, as for Run.OnResult, so a Job kept by
	// Options.RetainUntilRecorded gets its TTL back. Default: nil, Results
	// are dropped (and count as recorded).
	Ended func(run RunInfo, res Result, err error) error
}

// SweepReport says what a Sweep did.
type SweepReport struct {
	// Attached are the known runs, now followed; each ends with a call to
	// SweepOptions.Ended.
	Attached []RunInfo
	// Deleted are the unknown runs whose Jobs were deleted.
	Deleted []RunInfo
	// Spared are the unknown runs left alone: younger than the grace, or
	// already being deleted.
	Spared []RunInfo
	// Done is closed once every attached run has ended and its Ended call
	// has returned.
	Done <-chan struct{}
}

// Sweep picks up the runs this Worker manages (as List finds them) after
// a restart, so that no Job is left that nobody follows. known says
// whether the caller (a scheduler) still knows a run ID; Sweep calls it
// once per run, from Sweep's goroutine. Then:
//   - a known run is attached to, in the background: Sweep returns at
//     once, and each attached run's end goes to SweepOptions.Ended. The
//     attaches end with their runs, or when ctx ends, or at Close, which
//     waits for them; none outlives Close;
//   - an unknown run older than SweepOptions.Grace has its Job deleted
//     with foreground propagation, so its pods go too (a Job deleted
//     without a propagation policy leaves its pods running). The delete
//     is conditional on the Job's UID and resourceVersion as listed; if
//     the Job changed meanwhile, it is read again and judged again;
//   - an unknown run younger than the grace is spared.
//
// Sweep never touches a Job without this Worker's labels (LabelWorker set
// to Options.Name, manifest.LabelManagedBy, manifest.LabelRunID): the
// API server selects by them, and Sweep checks them again on every Job.
//
// Call Sweep once at start-up, before the Worker starts new runs, or pass
// a known that is false for the runs this process follows already:
// Sweep attaches to a known run even if a Run of this Worker follows it.
// An error names each namespace that could not be listed and each Job
// that could not be deleted; the report still holds what was done.
//
// Every request of Sweep (the LISTs, the GETs and deletes of unknown
// runs' Jobs) and of the attaches it starts is retried on a transient
// failure (timeouts, 429, 5xx, dropped connections) under Options.Retry,
// for up to its deadline (3 minutes by default) and never past ctx; a
// delete whose answer was lost and that then finds the Job gone, or
// being deleted, counts as deleted.
func (w *Worker) Sweep(ctx context.Context, known func(runID string) bool, opts SweepOptions) (SweepReport, error) {
	done := make(chan struct{})
	report := SweepReport{Done: done}
	if known == nil {
		close(done)
		return report, errors.New("worker: sweep: known is nil; pass a func saying which run IDs the caller still knows")
	}
	if !w.enter() {
		close(done)
		return report, ErrClosed
	}
	defer w.running.Done()
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultSweepGrace
	}

	all, release := w.clusters.all()
	var errs []error
	var attaches sync.WaitGroup
	for _, c := range all {
		errs = append(errs, w.sweep(ctx, c, known, grace, opts, &report, &attaches)...)
	}
	w.running.Add(1) // the closer below; Close waits for it too
	go func() {
		defer w.running.Done()
		attaches.Wait()
		release()
		close(done)
	}()
	w.log.InfoContext(ctx, "swept", "attached", len(report.Attached), "deleted", len(report.Deleted), "spared", len(report.Spared))
	return report, errors.Join(errs...)
}

// sweep sweeps the Jobs of cluster c into report, starting the attaches
// in attaches, and returns what failed.
func (w *Worker) sweep(ctx context.Context, c *clusterParts, known func(string) bool, grace time.Duration, opts SweepOptions, report *SweepReport, attaches *sync.WaitGroup) []error {
	jobs, err := w.listJobs(ctx, c)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	now := time.Now()
	for i := range jobs {
		job := &jobs[i]
		info, err := w.runInfo(ctx, c, job, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := w.checkManaged(info.PID, job); err != nil {
			errs = append(errs, fmt.Errorf("worker: sweep: %w", err)) // the selector let it through: leave it
			continue
		}
		switch {
		case known(info.RunID):
			if !w.enter() {
				errs = append(errs, fmt.Errorf("worker: sweep: attach %s: %w", info.PID, ErrClosed))
				continue
			}
			report.Attached = append(report.Attached, info)
			attaches.Add(1)
			job := hold(job)
			go func() {
				defer w.running.Done()
				defer attaches.Done()
				w.sweepAttach(ctx, c, info, job, opts)
			}()
		case job.DeletionTimestamp != nil || (grace > 0 && info.Age < grace):
			report.Spared = append(report.Spared, info)
		default:
			deleted, err := w.deleteUnknown(ctx, c, job, known, grace)
			switch {
			case err != nil:
				errs = append(errs, err)
			case deleted:
				report.Deleted = append(report.Deleted, info)
			default:
				report.Spared = append(report.Spared, info)
			}
		}
	}
	return errs
}

// sweepAttach follows a known run and reports its end to opts.Ended.
func (w *Worker) sweepAttach(ctx context.Context, c *clusterParts, info RunInfo, job heldJob, opts SweepOptions) {
	var ao AttachOptions
	if opts.Attach != nil {
		ao = opts.Attach(info)
	}
	res, err := w.follow(ctx, c, info.PID, job, ao)
	if err != nil {
		err = fmt.Errorf("worker: sweep: attach %s: %w", info.PID, err)
		if opts.Ended != nil {
			_ = opts.Ended(info, res, err) // the Job is kept: nothing to release
		}
		return
	}
	var ended func(Result) error
	if opts.Ended != nil {
		ended = func(res Result) error { return opts.Ended(info, res, nil) }
	}
	_ = w.deliver(ctx, c, job, res, ended) // a failure is logged; the Job is kept
}

// deleteUnknown deletes the Job of an unknown run with foreground
// propagation, on condition that it is the Job listed, unchanged. If it
// changed, it is read again and deleted only if it still carries this
// Worker's labels, is still unknown, old enough and not being deleted.
// deleted is false when the Job was spared or already gone.
func (w *Worker) deleteUnknown(ctx context.Context, c *clusterParts, job *batchv1.Job, known func(string) bool, grace time.Duration) (deleted bool, err error) {
	jobs, err := c.jobs(job.Namespace)
	if err != nil {
		return false, err
	}
	current := job
	p := w.retry(ctx, "delete the Job of an unknown run", job.Namespace+"/"+job.Name)
	mayHaveDeleted := false
	err = clientretry.RetryOnConflict(clientretry.DefaultRetry, func() error {
		if current == nil {
			got, err := retry.Value(ctx, p, func(ctx context.Context) (*batchv1.Job, error) {
				return jobs.Get(ctx, job.Name, metav1.GetOptions{})
			})
			if err != nil {
				return err
			}
			if mayHaveDeleted && got.UID == job.UID && got.DeletionTimestamp != nil {
				deleted = true // our delete, whose answer was lost
				return nil
			}
			if got.UID != job.UID || w.checkManaged(clusterid.PID{Namespace: got.Namespace, Name: got.Name}, got) != nil || known(got.Labels[manifest.LabelRunID]) ||
				got.DeletionTimestamp != nil || (grace > 0 && time.Since(got.CreationTimestamp.Time) < grace) {
				return nil // no longer the Job judged, or no longer to delete
			}
			current = got
		}
		opts := metav1.DeleteOptions{
			PropagationPolicy: new(metav1.DeletePropagationForeground),
			Preconditions:     &metav1.Preconditions{UID: &current.UID, ResourceVersion: &current.ResourceVersion},
		}
		err := p.Do(ctx, func(ctx context.Context) error {
			err := jobs.Delete(ctx, current.Name, opts)
			if err != nil && retry.MayHaveApplied(err) {
				mayHaveDeleted = true
			}
			return err
		})
		if apierrors.IsConflict(err) {
			current = nil // read it again, judge it again
			return err
		}
		deleted = err == nil
		return err
	})
	switch {
	case apierrors.IsNotFound(err):
		return mayHaveDeleted, nil
	case err != nil:
		return false, fmt.Errorf("worker: sweep: delete Job %s/%s%s: %w", job.Namespace, job.Name, inCluster(c), err)
	}
	if deleted {
		w.log.InfoContext(ctx, "deleted the Job of an unknown run", "cluster", c.name, "namespace", job.Namespace, "job", job.Name, "run", job.Labels[manifest.LabelRunID])
	}
	return deleted, nil
}

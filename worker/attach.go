package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// ErrNotManaged is matched, through errors.Is, by a [*NotManagedError].
var ErrNotManaged = errors.New("the Job is not managed by this worker")

// NotManagedError is the error of Attach given the PID of a Job that this
// Worker did not make: one without LabelWorker set to the Worker's name,
// manifest.LabelRunID, or manifest.LabelManagedBy set to
// manifest.ManagedBy. Attach does not follow it.
type NotManagedError struct {
	// PID names the Job.
	PID clusterid.PID
	// Problems name each label that is missing or wrong, as
	// `label "kubeworker.io/worker" is "etl", want "reports"`.
	Problems []string
}

func (e *NotManagedError) Error() string {
	return fmt.Sprintf("worker: Job %s/%s is not managed by this worker: %s", e.PID.Namespace, e.PID.Name, strings.Join(e.Problems, "; "))
}

// Is reports whether target is ErrNotManaged.
func (e *NotManagedError) Is(target error) bool { return target == ErrNotManaged }

// AttachOptions configure one Attach. The zero value works: the watch
// settings of the template rendered with no values, no log, no events.
type AttachOptions struct {
	// Values are the run's values. A Job does not carry its template's
	// watch settings, so Attach renders the Worker's template with these
	// values, through Options.Preparer, only to read them: the pod start
	// timeout (pod_watch_timeout_seconds), the total deadline
	// (job_watch_timeout_seconds) and whether to follow the log
	// (stream_output), and the cluster_config, which finds the cluster of
	// a PID that no cluster the Worker knows has; the run container is
	// Options.Prepare.Container, as for Run. Both timeouts count from the start of Attach. Pass the
	// values Run was given to watch as Run did. Default: none, the
	// template's defaults (60 s, no deadline, the log followed, for
	// manifest.Default()).
	Values map[string]any
	// Logs receives the run container's log, as Run.Logs. Default: nil,
	// not read.
	Logs io.Writer
	// LogsSince skips the log lines timestamped at or before it, so that
	// a log written before a restart continues without repeats: pass the
	// LastLogTime of an earlier Result, or the timestamp of the last line
	// saved. Default: zero, the whole log from its start.
	LogsSince time.Time
	// Events receives each new pod phase, as Run.Events. Default: nil.
	Events jobwatch.EventSink
	// OnResult is called with the Result before Attach returns it; a nil
	// return counts as the Result recorded, as for Run.OnResult, so a Job
	// kept by Options.RetainUntilRecorded gets its TTL back. Default: nil,
	// the Result counts as recorded when Attach returns it.
	OnResult func(Result) error
}

// Attach follows the existing Job that pid names, made by this Worker or
// by another with the same Options.Name (a restarted process, say), to the
// same Result that Run returns: typed Outcome, exit code, events and log.
// The Job may be pending, running or finished (its Outcome is read from
// its status and pods). Attaching shares the Worker's watch streams with
// its Runs, so following N runs costs no more watch connections however
// they were started. Each Attach makes one GET of its Job, through the
// client's rate limit; to pick up many runs at once after a restart,
// Sweep finds them all with one LIST per namespace.
//
// The PID's cluster UID says which cluster the Job is in: the Worker's
// own, one of Options.Clusters, one a run of this Worker reached, or,
// when AttachOptions.Values render a cluster_config (and
// Options.RunClusters allow it), the cluster it names, if its UID is the
// PID's. So a restarted worker attaches to runs in other clusters when
// given them up front or given the runs' values.
//
// A Job that is gone, or is deleted while Attach follows it, is a Result
// with Outcome jobwatch.Deleted and ExitCode -1, not an error: Attach
// cannot tell a Job deleted from one that never existed.
//
// What is retried, and for how long: the cluster UID read (default
// Identity) and the GET of the Job are retried on what retry.Retriable
// calls transient (timeouts, 429 with or without Retry-After, 5xx,
// dropped or refused connections) under Options.Retry: back-off with
// jitter, or the server's Retry-After, for up to its deadline (3 minutes
// by default) and never past ctx; so a worker restarting into a brief
// network drop or an API server restart does not lose its runs. Following
// the Job then retries as Run's does, for as long as the run lasts, and
// the retention patch as Run's. A 4xx that a retry cannot fix fails at
// once.
//
// Errors, each naming what is wrong:
//   - a malformed PID: clusterid.ErrInvalidPID (errors.As reaches the
//     *clusterid.PIDError naming the bad part); parse stored PIDs with
//     clusterid.ParsePID, which gives the same error;
//   - a PID of a cluster this Worker does not know: an
//     *UnknownClusterError, matching ErrUnknownCluster and
//     clusterid.ErrWrongCluster; nothing is sent to any cluster about it;
//   - a Job without this Worker's labels: a *NotManagedError, matching
//     ErrNotManaged;
//   - after Close: ErrClosed; ctx ended: ctx's error. The Result then
//     holds what was known.
func (w *Worker) Attach(ctx context.Context, pid clusterid.PID, opts AttachOptions) (Result, error) {
	if !w.enter() {
		return Result{PID: pid}, ErrClosed
	}
	defer w.running.Done()
	c, release, job, err := w.lookUp(ctx, pid, opts.Values)
	if err != nil {
		return Result{PID: pid}, fmt.Errorf("worker: attach %s: %w", pid, err)
	}
	defer release()
	if job == nil {
		w.log.InfoContext(ctx, "attached to a Job that is gone", "pid", pid.String(), "cluster", c.name)
		return goneResult(c, pid, ""), nil
	}
	held := hold(job)
	res, err := w.follow(ctx, c, pid, held, opts)
	if err != nil {
		return res, fmt.Errorf("worker: attach %s: %w", pid, err)
	}
	if err := w.deliver(ctx, c, held, res, opts.OnResult); err != nil {
		return res, fmt.Errorf("worker: attach %s: %w", pid, err)
	}
	return res, nil
}

// attachProbeID is the run ID the template is rendered with to read the
// cluster_config of an Attach's values, before the Job (and so the run's
// ID) is known.
const attachProbeID = "kubeworker-attach"

// lookUp checks pid, finds its cluster (values' cluster_config, if any,
// tried when no known cluster has its UID) and returns its Job, or nil if
// there is none; release when done with the cluster.
func (w *Worker) lookUp(ctx context.Context, pid clusterid.PID, values map[string]any) (_ *clusterParts, release func(), _ *batchv1.Job, _ error) {
	if err := pid.Validate(); err != nil {
		return nil, nil, nil, err
	}
	hint := func() *manifest.ClusterConfig {
		if values == nil {
			return nil
		}
		_, cfg, err := w.opts.Parts.Preparer.Prepare(ctx, RunSpec{ID: attachProbeID, Values: values})
		if err != nil || cfg == nil {
			return nil // follow reports a bad render
		}
		return cfg.ClusterConfig
	}
	c, release, err := w.clusters.forPID(ctx, pid, hint)
	if err != nil {
		return nil, nil, nil, err
	}
	job, err := w.getManaged(ctx, c, pid)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	return c, release, job, nil
}

// getManaged returns pid's Job in c, nil if there is none, or a
// *NotManagedError if it is not this Worker's.
func (w *Worker) getManaged(ctx context.Context, c *clusterParts, pid clusterid.PID) (*batchv1.Job, error) {
	jobs, err := c.jobs(pid.Namespace)
	if err != nil {
		return nil, err
	}
	job, err := retry.Value(ctx, w.retry(ctx, "get the Job to attach to", pid.String()), func(ctx context.Context) (*batchv1.Job, error) {
		return jobs.Get(ctx, pid.Name, metav1.GetOptions{})
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get Job: %w", err)
	}
	if err := w.checkManaged(pid, job); err != nil {
		return nil, err
	}
	return job, nil
}

// checkManaged returns a *NotManagedError unless job carries this
// Worker's labels.
func (w *Worker) checkManaged(pid clusterid.PID, job *batchv1.Job) error {
	var problems []string
	want := func(key, value string) {
		got, ok := job.Labels[key]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("label %q is missing", key))
		case value != "" && got != value:
			problems = append(problems, fmt.Sprintf("label %q is %q, want %q", key, got, value))
		case got == "":
			problems = append(problems, fmt.Sprintf("label %q is empty", key))
		}
	}
	want(LabelWorker, w.opts.Name)
	want(manifest.LabelRunID, "")
	want(manifest.LabelManagedBy, manifest.ManagedBy)
	if len(problems) > 0 {
		return &NotManagedError{PID: pid, Problems: problems}
	}
	return nil
}

// follow waits for job, a Job of this Worker, with the watch settings
// opts.Values give. It does not deliver the Result.
func (w *Worker) follow(ctx context.Context, c *clusterParts, pid clusterid.PID, job heldJob, opts AttachOptions) (Result, error) {
	_, cfg, err := w.opts.Parts.Preparer.Prepare(ctx, RunSpec{ID: job.runID, Values: opts.Values})
	if err != nil {
		res := Result{PID: pid, RunID: job.runID, Cluster: c.name, CreatedAt: job.created}
		res.ExitCode = -1
		return res, fmt.Errorf("render the watch settings (AttachOptions.Values): %w", err)
	}
	return w.followWith(ctx, c, pid, job, w.waitOptions(cfg, opts.Logs, opts.LogsSince, opts.Events))
}

// followWith waits for job with the watch settings wo.
func (w *Worker) followWith(ctx context.Context, c *clusterParts, pid clusterid.PID, job heldJob, wo jobwatch.WaitOptions) (Result, error) {
	runID := job.runID
	res := Result{PID: pid, RunID: runID, Cluster: c.name, CreatedAt: job.created}
	res.ExitCode = -1
	var err error
	res.Result, err = c.parts.Waiter.Wait(ctx, jobwatch.JobRef{Namespace: pid.Namespace, Name: pid.Name}, wo)
	switch {
	case errors.Is(err, jobwatch.ErrNotFound):
		// Deleted between the GET and the Wait.
		return goneResult(c, pid, runID), nil
	case err != nil:
		return res, err
	}
	w.log.InfoContext(ctx, "attached run ended", "run", runID, "pid", pid.String(), "cluster", c.name, "outcome", res.Outcome.String(), "exit_code", res.ExitCode)
	return res, nil
}

// goneResult is the Result of a Job that no longer exists.
func goneResult(c *clusterParts, pid clusterid.PID, runID string) Result {
	return Result{PID: pid, RunID: runID, Cluster: c.name, Result: jobwatch.Result{
		Outcome: jobwatch.Deleted, ExitCode: -1, NoExitCode: "the Job does not exist (any more)",
	}}
}

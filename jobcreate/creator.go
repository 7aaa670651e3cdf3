// Package jobcreate creates a run's Job exactly once, whatever the faults:
// the Job's name comes from the run ID, a retry after an ambiguous failure
// first looks the run's Job up and adopts it only if it was made from the
// same spec, and transient failures are retried under one retry.Policy. A
// refusal is an *Error with the API server's reason and a hint.
package jobcreate

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/retry"
)

// AnnotationSpecHash holds SpecHash of the Job as created, so that a later
// adoption can check that a Job found for a run was made from the same spec.
const AnnotationSpecHash = "kubeworker.io/spec-hash"

// ErrNameTaken means the Job's name is held by a Job of another run.
var ErrNameTaken = errors.New("the Job name is taken by another run's Job")

// Options tune a Creator. The zero value works.
type Options struct {
	// Retry paces the retries of a transient failure (see Creator.Create).
	// Default: the zero retry.Policy, exponential back-off with jitter
	// from 500 ms to 30 s, the server's Retry-After when longer, for up to
	// retry.DefaultDeadline and never past the caller's context. New uses
	// Options.Retry when this is zero.
	Retry retry.Policy
	// Logger gets a Debug line per retry and per adopted Job. Default:
	// discard.
	Logger *slog.Logger
	// Metrics is told of every attempt and retry. Default: none
	// (metrics.Discard).
	Metrics metrics.Recorder
	// Finder, if set, is asked before the first attempt, and again after
	// an attempt that may have created the Job, for the Jobs the run
	// already has under another name (its template renamed the Job): one
	// made from the same spec is adopted, any other refused with
	// ErrDuplicateRun. New sets it to the Worker's Waiter when that is a
	// RunFinder, as a *jobwatch.Watcher is. If the Finder fails, Create
	// logs a warning and goes on.
	Finder RunFinder
}

// RunFinder names the Jobs a run has in a namespace, from a cache, so that
// asking before every create costs no request.
type RunFinder interface {
	RunJobs(ctx context.Context, namespace, runID string) ([]string, error)
}

// Creator creates prepared Jobs, exactly one per run. It is safe for
// concurrent use.
type Creator struct {
	client kubernetes.Interface
	opts   Options
}

// New returns a Creator that uses client.
func New(client kubernetes.Interface, opts Options) *Creator {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Metrics = metrics.OrDiscard(opts.Metrics)
	return &Creator{client: client, opts: opts}
}

// Create creates job in the namespace its metadata names and returns the
// Job as the API server stored it. job must carry manifest.LabelRunID, as
// manifest.Config.Prepare makes it; it is not changed.
//
// Exactly one Job is made per run, whatever the faults:
//   - The Job is named from its generateName and a hash of the run ID, so
//     the API server itself refuses a second Job for the run; a Create that
//     finds the name taken adopts that Job if it carries the run's ID and
//     spec hash, and fails with ErrNameTaken otherwise.
//   - After an attempt that may have created the Job (its answer was lost,
//     or was a 5xx), the next attempt first GETs the Job by that name and
//     adopts it: one request, whatever the number of Jobs in the
//     namespace, so a burst of retries never turns into LISTs of them all.
//   - With Options.Finder, a Job of the run under another name
//     (made from a template that names Jobs otherwise) is found in the
//     shared stream's run-ID index, at no request, before the first
//     attempt and after each that may have created one, and adopted or
//     refused as above.
//
// What is retried, and for how long: every request Create makes (the
// create, the GETs of adoption) is retried on what retry.Retriable calls
// transient (timeouts, 429 with or without Retry-After, 5xx, dropped or
// refused connections) under Options.Retry: back-off with jitter,
// or the server's Retry-After when longer, until the policy's deadline
// (retry.DefaultDeadline, a few minutes, by default) and never past ctx.
// A 4xx that a retry cannot fix (invalid, forbidden, quota, a missing
// namespace) fails at once. Every failure is a *Error; one that ran
// out of time also matches retry.ErrGaveUp.
func (c *Creator) Create(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	runID := job.Labels[manifest.LabelRunID]
	ns := job.Namespace
	if runID == "" || ns == "" {
		return nil, &Error{Namespace: ns, Name: jobName(job), RunID: runID,
			Err: fmt.Errorf("a Job to create needs metadata.namespace and the %s label; prepare it with manifest.Config.Prepare", manifest.LabelRunID)}
	}
	obj := job.DeepCopy()
	if obj.Name == "" {
		obj.Name = RunJobName(obj.GenerateName, runID)
		obj.GenerateName = ""
	}
	hash := SpecHash(obj)
	if obj.Annotations == nil {
		obj.Annotations = map[string]string{}
	}
	obj.Annotations[AnnotationSpecHash] = hash
	jobs := c.client.BatchV1().Jobs(ns)

	attempts := 0
	look := false       // the Job may exist under its name: GET it first
	lookRenamed := true // ask the Finder for the run's Jobs under other names
	op := func(ctx context.Context) (*batchv1.Job, error) {
		attempts++
		c.opts.Metrics.CreateAttempt(attempts > 1)
		if look {
			existing, err := jobs.Get(ctx, obj.Name, metav1.GetOptions{})
			switch {
			case err == nil:
				if err := checkOurs(existing, runID, hash); err != nil {
					return nil, err
				}
				c.opts.Logger.DebugContext(ctx, "adopted the run's Job after an attempt whose answer was lost", "namespace", ns, "job", obj.Name, "run", runID)
				return existing, nil
			case !apierrors.IsNotFound(err):
				return nil, err
			}
			look = false
		}
		if lookRenamed {
			found, err := c.findRenamed(ctx, obj.Name, runID, ns, hash)
			if err != nil || found != nil {
				return found, err
			}
			lookRenamed = false
		}
		created, err := jobs.Create(ctx, obj, metav1.CreateOptions{})
		switch {
		case err == nil:
			return created, nil
		case apierrors.IsAlreadyExists(err):
			existing, gerr := jobs.Get(ctx, obj.Name, metav1.GetOptions{})
			if gerr != nil {
				look = true // it exists: the next attempt only reads it
				return nil, gerr
			}
			if err := checkOurs(existing, runID, hash); err != nil {
				return nil, err
			}
			c.opts.Logger.DebugContext(ctx, "adopted the run's existing Job", "namespace", ns, "job", obj.Name, "run", runID)
			return existing, nil
		}
		if retry.MayHaveApplied(err) {
			look, lookRenamed = true, c.opts.Finder != nil
		}
		return nil, err
	}
	p := c.opts.Retry.Notifying(func(err error, wait time.Duration) {
		c.opts.Logger.DebugContext(ctx, "retrying Job creation", "namespace", ns, "job", obj.Name, "run", runID, "attempt", attempts, "wait", wait, "error", err)
	})
	created, err := retry.Value(ctx, p, op)
	if err != nil {
		return nil, newError(ns, obj.Name, runID, attempts, err)
	}
	return created, nil
}

// findRenamed asks the Finder for the run's Jobs named other than name,
// and returns the first that still exists if it is the run's and made
// from the same spec (hash), or why not.
func (c *Creator) findRenamed(ctx context.Context, name, runID, ns, hash string) (*batchv1.Job, error) {
	if c.opts.Finder == nil {
		return nil, nil
	}
	names, err := c.opts.Finder.RunJobs(ctx, ns, runID)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		c.opts.Logger.WarnContext(ctx, "cannot look for the run's Jobs under other names; creating without", "namespace", ns, "run", runID, "err", err)
		return nil, nil
	}
	for _, other := range names {
		if other == name {
			continue // Create meets it under its own name
		}
		j, err := c.client.BatchV1().Jobs(ns).Get(ctx, other, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get the run's Job %s found under another name: %w", other, err)
		}
		if err := checkOurs(j, runID, hash); err != nil {
			return nil, err
		}
		c.opts.Logger.DebugContext(ctx, "adopted the run's Job under another name", "namespace", ns, "job", other, "run", runID)
		return j, nil
	}
	return nil, nil
}

// checkOurs reports whether j is the run's Job made from the same spec.
func checkOurs(j *batchv1.Job, runID, hash string) error {
	if got := j.Labels[manifest.LabelRunID]; got != runID {
		return fmt.Errorf("%w: Job %s/%s belongs to run %q, not %q", ErrNameTaken, j.Namespace, j.Name, got, runID)
	}
	if got := j.Annotations[AnnotationSpecHash]; got != hash {
		return fmt.Errorf("%w: Job %s/%s for run %q has spec hash %q, not %q", ErrDuplicateRun, j.Namespace, j.Name, runID, got, hash)
	}
	return nil
}

// RunJobName is the name Create gives the Job of a run: its generateName
// (or "kubeworker-job-") cut to leave room, then 10 characters of a hash of
// the run ID. It is a valid DNS-1123 label of at most 63 characters.
func RunJobName(generateName, runID string) string {
	prefix := generateName
	if prefix == "" {
		prefix = manifest.DefaultGenerateName
	}
	const suffixLen = 10
	if len(prefix) > 63-suffixLen {
		prefix = prefix[:63-suffixLen]
	}
	sum := sha256.Sum256([]byte(runID))
	suffix := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:suffixLen]
	return prefix + suffix
}

// AnnotationOwner names, on a Job of a fleet of worker replicas, the
// replica that follows its run (see worker.Fleet). It is not part of the
// spec hash: the same run prepared by two replicas has the same hash.
const AnnotationOwner = "kubeworker.io/owner"

// SpecHash is a hash of what makes a Job: its labels, its annotations
// other than AnnotationSpecHash and AnnotationOwner, and its spec. Names and server-set fields
// do not count.
func SpecHash(job *batchv1.Job) string {
	ann := make(map[string]string, len(job.Annotations))
	for k, v := range job.Annotations {
		if k != AnnotationSpecHash && k != AnnotationOwner {
			ann[k] = v
		}
	}
	data, _ := json.Marshal(struct {
		Labels      map[string]string `json:"labels,omitempty"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Spec        batchv1.JobSpec   `json:"spec"`
	}{job.Labels, ann, job.Spec}) // a JobSpec always marshals
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

func jobName(j *batchv1.Job) string {
	if j.Name != "" {
		return j.Name
	}
	return j.GenerateName
}

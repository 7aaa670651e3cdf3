package worker

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

	"github.com/cenkalti/backoff/v4"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
)

// AnnotationSpecHash holds SpecHash of the Job as created, so that a later
// adoption can check that a Job found for a run was made from the same spec.
const AnnotationSpecHash = "kubeworker.io/spec-hash"

// ErrNameTaken means the Job's name is held by a Job of another run.
var ErrNameTaken = errors.New("the Job name is taken by another run's Job")

// CreateOptions tune a Creator. The zero value gives 3 attempts, 1 s apart
// plus up to 3 s of jitter, as Prefect's worker.
type CreateOptions struct {
	// Attempts is how many times Create tries in all. Default 3.
	Attempts int
	// Delay is the fixed wait between attempts. Default 1s.
	Delay time.Duration
	// Jitter is the largest random wait added to Delay, uniform from 0.
	// Default 3s; a negative value means none.
	Jitter time.Duration
	// Logger gets a Debug line per retry and per adopted Job. Default:
	// discard.
	Logger *slog.Logger
	// Metrics is told of every attempt and retry. Default: none
	// (metrics.Discard).
	Metrics metrics.Recorder
	// Finder, if set, is asked before the first attempt for the Jobs the
	// run already has under another name (its template renamed the Job):
	// one made from the same spec is adopted, any other refused with
	// ErrDuplicateRun. New sets it to the Worker's Waiter when that is a
	// RunFinder, as a *jobwatch.Watcher is. If the Finder fails, Create
	// logs a warning and goes on.
	Finder RunFinder

	timer func() backoff.Timer // tests replace the clock
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
	opts   CreateOptions
}

// NewCreator returns a Creator that uses client.
func NewCreator(client kubernetes.Interface, opts CreateOptions) *Creator {
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Delay == 0 {
		opts.Delay = time.Second
	}
	switch {
	case opts.Jitter == 0:
		opts.Jitter = 3 * time.Second
	case opts.Jitter < 0:
		opts.Jitter = 0
	}
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
//   - Before every retry, Create looks for a Job with the run's ID and
//     adopts it, so a Create whose answer was lost is never repeated.
//   - With CreateOptions.Finder, a Job of the run under another name
//     (made from a template that names Jobs otherwise) is found before the
//     first attempt, and adopted or refused as above.
//
// Only what Retriable accepts is retried, waiting CreateOptions.Delay plus
// jitter, or the server's Retry-After if longer. Every failure is a
// *CreateError.
func (c *Creator) Create(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	runID := job.Labels[manifest.LabelRunID]
	ns := job.Namespace
	if runID == "" || ns == "" {
		return nil, &CreateError{Namespace: ns, Name: jobName(job), RunID: runID,
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

	if found, err := c.findRenamed(ctx, obj.Name, runID, ns, hash); err != nil || found != nil {
		if err != nil {
			return nil, newCreateError(ns, obj.Name, runID, 0, err)
		}
		return found, nil
	}
	bo := &retryBackOff{delay: c.opts.Delay, jitter: c.opts.Jitter, rand: randInt64N}
	attempts := 0
	op := func() (*batchv1.Job, error) {
		attempts++
		c.opts.Metrics.CreateAttempt(attempts > 1)
		if attempts > 1 {
			found, err := c.find(ctx, ns, runID, hash)
			if err != nil || found != nil {
				return found, classify(bo, err)
			}
		}
		created, err := c.client.BatchV1().Jobs(ns).Create(ctx, obj, metav1.CreateOptions{})
		if err == nil {
			return created, nil
		}
		if apierrors.IsAlreadyExists(err) {
			existing, gerr := c.client.BatchV1().Jobs(ns).Get(ctx, obj.Name, metav1.GetOptions{})
			if gerr != nil {
				return nil, classify(bo, gerr)
			}
			if err := checkOurs(existing, runID, hash); err != nil {
				return nil, backoff.Permanent(err)
			}
			c.opts.Logger.DebugContext(ctx, "adopted the run's existing Job", "namespace", ns, "job", obj.Name, "run", runID)
			return existing, nil
		}
		return nil, classify(bo, err)
	}
	notify := func(err error, wait time.Duration) {
		c.opts.Logger.DebugContext(ctx, "retrying Job creation", "namespace", ns, "job", obj.Name, "run", runID, "attempt", attempts, "wait", wait, "error", err)
	}
	var timer backoff.Timer
	if c.opts.timer != nil {
		timer = c.opts.timer()
	}
	b := backoff.WithContext(backoff.WithMaxRetries(bo, uint64(c.opts.Attempts-1)), ctx)
	created, err := backoff.RetryNotifyWithTimerAndData(op, b, notify, timer)
	if err != nil {
		return nil, newCreateError(ns, obj.Name, runID, attempts, err)
	}
	return created, nil
}

// classify marks err permanent unless a retry can fix it.
func classify(bo *retryBackOff, err error) error {
	if err == nil || !Retriable(err) {
		return backoff.Permanent(err)
	}
	bo.noteRetryAfter(err)
	return err
}

// find returns the run's Job if one exists: nil if none, an error if it is
// not ours to adopt.
func (c *Creator) find(ctx context.Context, ns, runID, hash string) (*batchv1.Job, error) {
	sel := labels.SelectorFromSet(labels.Set{manifest.LabelRunID: runID}).String()
	list, err := c.client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	switch len(list.Items) {
	case 0:
		return nil, nil
	case 1:
		j := &list.Items[0]
		if err := checkOurs(j, runID, hash); err != nil {
			return nil, err
		}
		c.opts.Logger.DebugContext(ctx, "adopted the run's Job after a failed attempt", "namespace", ns, "job", j.Name, "run", runID)
		return j, nil
	default:
		names := make([]string, len(list.Items))
		for i := range list.Items {
			names[i] = list.Items[i].Name
		}
		return nil, fmt.Errorf("%w: %d Jobs carry run ID %q: %s", ErrDuplicateRun, len(names), runID, strings.Join(names, ", "))
	}
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

// SpecHash is a hash of what makes a Job: its labels, its annotations
// other than AnnotationSpecHash, and its spec. Names and server-set fields
// do not count.
func SpecHash(job *batchv1.Job) string {
	ann := make(map[string]string, len(job.Annotations))
	for k, v := range job.Annotations {
		if k != AnnotationSpecHash {
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

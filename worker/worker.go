package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/retry"
	"github.com/kubeworker/kubeworker/secrets"
)

// LabelWorker names, on every Job a Worker creates, the Worker that made it.
const LabelWorker = "kubeworker.io/worker"

// ErrClosed is the error of Run, Attach and Start once Close has begun,
// whichever part noticed it (the Waiter's jobwatch.ErrClosed and the
// secret store's secrets.ErrClosed are wrapped with it).
var ErrClosed = errors.New("worker: closed")

// RunSpec is one unit of work, what Worker.Run runs.
type RunSpec struct {
	// ID identifies the run; required, a valid label value (a UUID is).
	ID string
	// Name is a readable name for labels and the Job's generateName.
	Name string
	// Values fill the template's variables.
	Values map[string]any
	// Env and Labels are added to this run's Job, over the worker's.
	Env    map[string]string
	Labels map[string]string
	// Logs receives the run container's log when the template's
	// stream_output is true. Default: nil, not followed; a run that ends
	// other than Succeeded still has its last lines in Result.LogTail
	// (one request), unless stream_output is false.
	Logs io.Writer
	// Events receives each new pod phase. Default: nil.
	Events jobwatch.EventSink
	// Started is called with the Job's PID as soon as the Job exists,
	// before Run follows it. Default: nil.
	Started func(clusterid.PID)
	// OnResult is called with the Result once the run has ended, before
	// Run returns. Record the Result in it: a nil return tells the Worker
	// the Result is safe, and only then does a Job kept by
	// Options.RetainUntilRecorded get its ttlSecondsAfterFinished back. An
	// error is returned by Run (with the Result) and the Job is kept, so a
	// later Attach or Sweep can deliver the Result again. Default: nil,
	// the Result counts as recorded when Run returns it.
	OnResult func(Result) error
}

// Result is how a run ended.
type Result struct {
	// PID names the Job; it stays valid for Kill while the Job exists.
	PID clusterid.PID
	// RunID is the run's ID, from the Job's label; empty when Attach found
	// no Job.
	RunID string
	jobwatch.Result
	// CreatedAt is when the Job was created.
	CreatedAt time.Time
	// Requests counts the API requests made for this run, by verb and
	// resource: its create (and retries), its log streams, and the gets,
	// pod lists and event lists its Wait needed. The shared watch streams
	// are charged to no run. Only a client whose transport counts (Config
	// makes one; else metrics.WrapTransport) fills it.
	Requests metrics.Requests
}

// Options configure a Worker. The zero value works with a client. The
// settings below tune the default parts; a setting for a part given in
// Parts is an error from New, never silently ignored.
type Options struct {
	// Name names the worker: it is set as LabelWorker on every Job and
	// names the API-key Secret. Default: "kubeworker".
	Name string
	// Template is the job template. Default: manifest.Default().
	Template *manifest.Template
	// Namespace is where Jobs are created: it replaces the namespace the
	// template renders to, unless the run's values give a "namespace".
	// Start, List and Sweep look there. It is never passed to the template
	// as a value, so any template works with it. Default: the namespace
	// the template renders to.
	Namespace string
	// Namespaces are the namespaces that List and Sweep look for this
	// worker's Jobs in. Default: Namespace, else the namespace the
	// template renders to with no values ("default" for
	// manifest.Default()).
	Namespaces []string
	// Render says how the default Preparer renders the template: the
	// environment lookup of "{{ $NAME }}", the opt-outs for unknown values
	// and placeholders (see manifest.RenderOptions). Default: strict, no
	// environment.
	Render manifest.RenderOptions
	// Prepare holds the default Preparer's worker-wide settings: env and
	// labels added to every Job, the default image and command, the run
	// container's name (which the default Waiter follows too).
	Prepare manifest.PrepareOptions
	// ServiceAccount and ImagePullSecrets are set by the default Preparer
	// on every Job's pod spec when not empty.
	ServiceAccount   string
	ImagePullSecrets []string
	// Secrets chooses the default SecretStore: how secret values are kept
	// out of Job specs. Default: not at all.
	Secrets SecretsOptions
	// Retry is the one retry policy of every API call on a run's path:
	// the Job's create and the GETs that adopt it, Attach's reads, the
	// cluster UID read, Kill's delete, the retention patch, Secret writes,
	// List's and Sweep's requests, and the final read of a pod's log. A
	// call is retried on what retry.Retriable calls transient (timeouts,
	// 429 with or without Retry-After, 5xx, dropped or refused
	// connections); a 4xx that a retry cannot fix fails at once. Default:
	// the zero retry.Policy, exponential back-off with jitter from 500 ms
	// to 30 s, the server's Retry-After when longer, for up to
	// retry.DefaultDeadline (3 minutes) and never past the call's context.
	// The default parts take it unless given a Policy of their own
	// (Create.Retry, Secrets.Manager.Retry).
	Retry retry.Policy
	// Create tunes the default JobCreator: its Retry (default
	// Options.Retry), logger, metrics and Finder.
	Create jobcreate.Options
	// LogTailLines is how many of the run container's last log lines the
	// default Waiter keeps in Result.LogTail, even with no Logs writer (see
	// jobwatch.WaitOptions.LogTailLines). Default: 0, jobwatch's default;
	// negative turns it off.
	LogTailLines int
	// DeleteOnCancel deletes a run's Job (foreground) when Run's context
	// ends before the Job does. Default: false, the Job is left running.
	DeleteOnCancel bool
	// RetainUntilRecorded keeps each finished Job, and so its pods with
	// their exit codes, until the caller has the run's Result: Run takes
	// the template's spec.ttlSecondsAfterFinished out of the Job before
	// creating it (the spec hash covers the Job as created), writes the
	// value in AnnotationTTL, and sets it back on the Job with a merge
	// patch once the Result is recorded (see Run.OnResult), so a TTL of 0
	// cannot delete a Job before its outcome is read. A Job whose Result
	// never reaches a caller (Run's ctx ended, the process died) keeps no
	// TTL until an Attach or Sweep delivers it. The patch is retried on a
	// transient failure under Options.Retry, for up to its deadline, even
	// after the run's ctx has ended. Needs the patch verb on jobs.
	// Default: false, the template's TTL applies from the start.
	RetainUntilRecorded bool
	// Logger receives the worker's logs. Default: discard.
	Logger *slog.Logger
	// Metrics receives what the Worker measures: runs started, finished
	// (by Outcome) and in flight, and, through the default Creator and
	// Waiter, Job creation attempts and retries, watch restarts and
	// relists, log reconnects and latencies. API requests are counted by
	// the client's transport: build the client with Config and
	// ConfigOptions.Metrics, or wrap it with metrics.WrapTransport. See
	// package metrics/prom. Default: none (metrics.Discard).
	Metrics metrics.Recorder

	// Parts replaces default parts; nil ones are built from the client.
	Parts Parts
}

// Worker runs units of work as Kubernetes Jobs (RunSpec), and picks up the
// runs an earlier process started (Attach, List, Sweep). It is safe for
// concurrent use; Close it when done.
type Worker struct {
	opts Options
	log  *slog.Logger
	// client is New's, for Preflight; nil when every part was given.
	client kubernetes.Interface

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// New returns a Worker whose default parts use client. client may be nil
// when every part is given in opts.
func New(client kubernetes.Interface, opts Options) (*Worker, error) {
	if opts.Name == "" {
		opts.Name = "kubeworker"
	}
	if msgs := validation.IsValidLabelValue(opts.Name); len(msgs) > 0 {
		return nil, fmt.Errorf("worker: name %q must be a valid label value: %s", opts.Name, strings.Join(msgs, "; "))
	}
	if err := opts.checkParts(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Template == nil {
		opts.Template = manifest.Default()
	}
	p := &opts.Parts
	needsClient := p.Creator == nil || p.Identity == nil || p.Waiter == nil ||
		(p.Store == nil && (opts.Secrets.APIKey || opts.Secrets.Env))
	if needsClient && client == nil {
		return nil, errors.New("worker: a client is needed for the parts not given in Options.Parts")
	}
	opts.Metrics = metrics.OrDiscard(opts.Metrics)
	if p.Preparer == nil {
		p.Preparer = &templatePreparer{opts: &opts}
	}
	if p.Waiter == nil {
		p.Waiter = jobwatch.New(client, jobwatch.Options{Logger: opts.Logger, Metrics: opts.Metrics, Retry: opts.Retry})
	}
	if p.Creator == nil {
		c := opts.Create
		if f, ok := p.Waiter.(jobcreate.RunFinder); ok && c.Finder == nil {
			c.Finder = f
		}
		if c.Logger == nil {
			c.Logger = opts.Logger
		}
		if c.Metrics == nil {
			c.Metrics = opts.Metrics
		}
		c.Retry = c.Retry.Or(opts.Retry)
		p.Creator = jobcreate.New(client, c)
	}
	if p.Store == nil {
		if opts.Secrets.APIKey || opts.Secrets.Env {
			so := opts.Secrets.Manager
			if so.WorkerName == "" {
				so.WorkerName = opts.Name
			}
			if so.Container == "" {
				so.Container = opts.Prepare.Container
			}
			if so.Logger == nil {
				so.Logger = opts.Logger
			}
			so.Retry = so.Retry.Or(opts.Retry)
			p.Store = &managerStore{m: secrets.New(client, so), opts: opts.Secrets}
		} else {
			p.Store = noSecrets{}
		}
	}
	if p.Identity == nil {
		p.Identity = clusterid.New(client, clusterid.Options{Logger: opts.Logger, Retry: opts.Retry})
	}
	if p.Jobs == nil && client != nil {
		p.Jobs = client.BatchV1()
	}
	return &Worker{opts: opts, log: opts.Logger, client: client}, nil
}

// checkParts refuses a setting of a default part that opts.Parts replaces.
func (o *Options) checkParts() error {
	var errs []error
	bad := func(part, setting string) {
		errs = append(errs, fmt.Errorf("Options.%s tunes the default %s, which Options.Parts.%s replaces", setting, part, part))
	}
	p := o.Parts
	if p.Preparer != nil {
		zero := manifest.PrepareOptions{}
		if o.Prepare.Container != "" || o.Prepare.Image != "" || o.Prepare.Command != nil || o.Prepare.Env != nil ||
			o.Prepare.Labels != nil || o.Prepare.Annotations != nil || o.Prepare.APIURLEnv != "" || o.Prepare.Customizations != nil ||
			o.Prepare.FailurePolicy != nil || o.Prepare.APIHost != zero.APIHost {
			bad("Preparer", "Prepare")
		}
		if o.Template != nil {
			bad("Preparer", "Template")
		}
		if o.Render.LookupEnv != nil || o.Render.AllowUnknown || o.Render.AllowUnknownPlaceholders || o.Render.AllowMissingEnv {
			bad("Preparer", "Render")
		}
		if o.ServiceAccount != "" || len(o.ImagePullSecrets) > 0 {
			bad("Preparer", "ServiceAccount and ImagePullSecrets")
		}
	}
	if p.Creator != nil && !reflect.ValueOf(o.Create).IsZero() {
		bad("Creator", "Create")
	}
	if p.Store != nil && (o.Secrets.APIKey || o.Secrets.Env) {
		bad("Store", "Secrets")
	}
	if p.Waiter != nil && o.LogTailLines != 0 {
		bad("Waiter", "LogTailLines")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// Run creates the run's Job and follows it to its end. The Job's PID goes
// to run.Started as soon as the Job exists. Every ending of the Job is a
// Result with a typed Outcome and a nil error (unless run.OnResult fails);
// an error means the Job could not be made or followed (bad values,
// creation refused, ctx ended). When ctx ends first, Run returns ctx's
// error with the PID it has, and deletes the Job if
// Options.DeleteOnCancel.
//
// A Run with the ID of a run whose Job exists adopts that Job, if it was
// made from the same spec (see Creator.Create), and follows it; Attach
// follows a Job by PID without preparing anything.
//
// What is retried, and for how long: no transient failure (timeouts, 429
// with or without Retry-After, 5xx, dropped connections, an API server
// restart) fails a Run while Options.Retry's deadline lasts (3 minutes by
// default, never past ctx), on any request of its path: the Secret
// writes, the Job's create and the GETs that adopt it after a lost
// answer, the cluster UID read, the retention patch and, when ctx ends
// under Options.DeleteOnCancel, the delete. Following the Job (the
// shared watch streams, its GETs and pod lists, the log stream) retries
// for as long as the run lasts. A 4xx that a retry cannot fix fails at
// once.
func (w *Worker) Run(ctx context.Context, run RunSpec) (Result, error) {
	if !w.enter() {
		return Result{}, ErrClosed
	}
	defer w.running.Done()
	ctx, m := beginRun(ctx, w.opts.Metrics)
	res, err := w.run(ctx, run)
	res.Requests = m.end(res.Outcome)
	return res, err
}

// run is Run once the Worker has counted the run.
func (w *Worker) run(ctx context.Context, run RunSpec) (Result, error) {
	job, cfg, err := w.opts.Parts.Preparer.Prepare(ctx, run)
	if err != nil {
		return Result{}, fmt.Errorf("worker: run %s: %w", run.ID, err)
	}
	if w.opts.RetainUntilRecorded {
		retain(job)
	}
	done, err := w.opts.Parts.Store.Apply(ctx, job)
	if err != nil {
		return Result{}, fmt.Errorf("worker: run %s: secrets: %w", run.ID, err)
	}
	created, err := w.opts.Parts.Creator.Create(ctx, job)
	if derr := done(ctx, created, err); derr != nil || err != nil {
		return Result{}, fmt.Errorf("worker: run %s: %w", run.ID, closed(errors.Join(err, derr)))
	}
	res := Result{RunID: run.ID, CreatedAt: created.CreationTimestamp.Time}
	held := hold(created)
	res.PID, err = w.opts.Parts.Identity.PID(ctx, held.namespace, held.name)
	if err != nil {
		return res, fmt.Errorf("worker: run %s: Job %s/%s created, but: %w", run.ID, held.namespace, held.name, err)
	}
	w.log.InfoContext(ctx, "created Job", "run", run.ID, "pid", res.PID.String())
	if run.Started != nil {
		run.Started(res.PID)
	}

	wo := w.waitOptions(cfg, run.Logs, time.Time{}, run.Events)
	res.Result, err = w.opts.Parts.Waiter.Wait(ctx, jobwatch.JobRef{Namespace: held.namespace, Name: held.name}, wo)
	if err != nil {
		if ctx.Err() != nil && w.opts.DeleteOnCancel {
			// Bounded by the retry policy's deadline, not by ctx, which
			// has ended.
			kerr := w.opts.Parts.Identity.Kill(context.WithoutCancel(ctx), res.PID, 0)
			if kerr != nil && !errors.Is(kerr, clusterid.ErrNotFound) {
				err = errors.Join(err, fmt.Errorf("delete Job %s: %w", res.PID, kerr))
			}
		}
		return res, fmt.Errorf("worker: run %s: %w", run.ID, closed(err))
	}
	w.log.InfoContext(ctx, "run ended", "run", run.ID, "pid", res.PID.String(), "outcome", res.Outcome.String(), "exit_code", res.ExitCode)
	res.Requests = metrics.RequestCountFrom(ctx).Requests() // so far, for OnResult
	if err := w.deliver(ctx, held, res, run.OnResult); err != nil {
		return res, fmt.Errorf("worker: run %s: %w", run.ID, err)
	}
	return res, nil
}

// closed wraps err with ErrClosed when a part says it was closed.
func closed(err error) error {
	if errors.Is(err, jobwatch.ErrClosed) || errors.Is(err, secrets.ErrClosed) {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// enter counts a call that follows a Job, for Close to wait on; false
// after Close.
func (w *Worker) enter() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.running.Add(1)
	return true
}

// waitOptions are the Wait settings of a run whose template rendered to
// cfg: the worker's run container, cfg's timeouts, and the log only if
// cfg streams output.
func (w *Worker) waitOptions(cfg *manifest.Config, logs io.Writer, since time.Time, events jobwatch.EventSink) jobwatch.WaitOptions {
	wo := jobwatch.WaitOptions{
		Container:       w.opts.Prepare.Container,
		LogTailLines:    w.opts.LogTailLines,
		PodStartTimeout: time.Duration(cfg.PodWatchTimeoutSeconds) * time.Second,
		Deadline:        time.Duration(cfg.JobWatchTimeoutSeconds) * time.Second,
		Events:          events,
	}
	if cfg.StreamOutput {
		wo.Logs, wo.LogsSince = logs, since
	} else {
		wo.LogTailLines = -1 // stream_output false: the log is not read at all
	}
	return wo
}

// Kill deletes the Job that pid names, with foreground propagation so its
// pods go too. A PID of another cluster is refused (clusterid.ErrWrongCluster);
// a missing Job is clusterid.ErrNotFound.
//
// With the default Identity, the cluster UID read and the delete are
// retried on a transient failure (timeouts, 429, 5xx, dropped
// connections) under Options.Retry, for up to its deadline (3 minutes by
// default) and never past ctx; a delete whose answer was lost and that
// then finds the Job gone returns nil.
func (w *Worker) Kill(ctx context.Context, pid clusterid.PID, grace time.Duration) error {
	return w.opts.Parts.Identity.Kill(ctx, pid, grace)
}

// Close stops following runs (their Run and Attach calls return an
// error, and the attaches a Sweep started end), waits for them, and
// deletes the Secrets the worker created. It leaves Jobs alone.
func (w *Worker) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.opts.Parts.Waiter.Close()
	w.running.Wait()
	return w.opts.Parts.Store.Close(ctx)
}

// templatePreparer is the default Preparer.
type templatePreparer struct{ opts *Options }

func (p *templatePreparer) Prepare(_ context.Context, run RunSpec) (*batchv1.Job, *manifest.Config, error) {
	cfg, err := p.opts.Template.Render(run.Values, p.opts.Render)
	if err != nil {
		return nil, nil, err
	}
	if _, given := run.Values["namespace"]; p.opts.Namespace != "" && !given {
		cfg.InNamespace(p.opts.Namespace)
	}
	po := p.opts.Prepare
	po.Labels = mergeLabels(po.Labels, map[string]string{LabelWorker: p.opts.Name})
	job, err := cfg.Prepare(manifest.Run{ID: run.ID, Name: run.Name, Env: run.Env, Labels: run.Labels}, po)
	if err != nil {
		return nil, nil, err
	}
	spec := &job.Spec.Template.Spec
	if p.opts.ServiceAccount != "" {
		spec.ServiceAccountName = p.opts.ServiceAccount
	}
	for _, name := range p.opts.ImagePullSecrets {
		spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
	}
	return job, cfg, nil
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

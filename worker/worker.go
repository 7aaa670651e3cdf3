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
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/fleet"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
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
	// Cluster names the cluster that ran it: Options.ClusterName for the
	// Worker's own, a Cluster's Name, or the UID of a run's cluster.
	Cluster string
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

	// ClusterName names the Worker's own cluster (the client given to New)
	// in Results, RunInfos, the metrics' cluster label and the logs; its
	// API requests are labelled by the client's transport (give
	// kubeconfig.Options.Metrics metrics.ForCluster(rec, ClusterName)).
	// Default: "", which reads as the own cluster.
	ClusterName string
	// Clusters are other clusters this Worker runs Jobs in, trusted and
	// known from the start (see Cluster): Start readies them, List and
	// Sweep look in them, Attach and Kill reach them by PID, before any
	// run names them. Default: none.
	Clusters []Cluster
	// RunClusters say whether a run's template may name a cluster of its
	// own with a kubeconfig (cluster_config), and how such clusters are
	// kept. Default: refused.
	RunClusters RunClusters

	// Fleet makes this Worker one replica of several of the same Name,
	// which share the runs and take over each other's (see Fleet).
	// Default: off.
	Fleet Fleet

	// Parts replaces default parts of the Worker's own cluster; nil ones
	// are built from the client. The other clusters get the default
	// parts, built from their clients and tuned by these Options.
	Parts Parts
}

// Worker runs units of work as Kubernetes Jobs (RunSpec), and picks up the
// runs an earlier process started (Attach, List, Sweep), in its own
// cluster and in the others Options name. It is safe for concurrent use;
// Close it when done.
type Worker struct {
	opts     Options
	log      *slog.Logger
	clusters *clusterSet
	fleet    *fleetState // nil without Options.Fleet
	// cancelled are the Jobs and runs Cancel deleted, for a second Cancel.
	cancelled cancelMemory

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// New returns a Worker whose default parts use client, the Worker's own
// cluster. client may be nil when every part is given in opts.
func New(client kubernetes.Interface, opts Options) (*Worker, error) {
	if opts.Name == "" {
		opts.Name = "kubeworker"
	}
	if err := validLabelValue(opts.Name); err != nil {
		return nil, fmt.Errorf("worker: name: %w", err)
	}
	if err := errors.Join(opts.checkParts(), opts.checkClusters(), opts.Fleet.check()); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
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
	ownRec := metrics.ForCluster(opts.Metrics, opts.ClusterName)
	opts.Parts = opts.defaultParts(client, opts.Parts, ownRec, clusterid.Options{})
	w := &Worker{opts: opts, log: opts.Logger}
	if opts.Fleet.Enabled {
		if client == nil {
			return nil, errors.New("worker: Options.Fleet needs a client (the Leases are in the Worker's own cluster)")
		}
		w.fleet = newFleetState(w, opts.Fleet)
	}
	w.clusters = &clusterSet{w: w, byFingerprint: map[string]*clusterParts{}, runs: map[string]*runCluster{},
		own: &clusterParts{name: opts.ClusterName, client: client, parts: opts.Parts, metrics: ownRec}}
	for i, c := range opts.Clusters {
		cl, err := w.namedCluster(c)
		if err != nil {
			// Only the clusters New built are closed: the given parts
			// stay the caller's.
			for _, built := range w.clusters.named {
				built.parts.Waiter.Close()
			}
			return nil, fmt.Errorf("worker: Options.Clusters[%d] (%q): %w", i, c.Name, err)
		}
		w.clusters.named = append(w.clusters.named, cl)
	}
	return w, nil
}

// namedCluster makes the parts of a cluster of Options.Clusters and, when
// its config holds no code that a fingerprint cannot see (a transport or
// its wrapper, which may add credentials, a dialer), lets a run's
// kubeconfig that connects the same way share them.
func (w *Worker) namedCluster(c Cluster) (*clusterParts, error) {
	cfg, err := clusterConfig(c)
	if err != nil {
		return nil, err
	}
	cl, err := w.newCluster(c.Name, cfg, "", c.Namespaces)
	if err != nil {
		return nil, err
	}
	if g := c.Config; g == nil || g.Transport == nil && g.WrapTransport == nil && g.Dial == nil {
		w.clusters.byFingerprint[kubeconfig.Fingerprint(cfg)] = cl
	}
	return cl, nil
}

// clusterConfig returns the client config of a cluster given in Options.
func clusterConfig(c Cluster) (*rest.Config, error) {
	if c.Config == nil {
		return kubeconfig.Load(kubeconfig.Options{Kubeconfig: c.Kubeconfig, Context: c.Context})
	}
	cfg := rest.CopyConfig(c.Config)
	if cfg.QPS == 0 {
		cfg.QPS = kubeconfig.DefaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = kubeconfig.DefaultBurst
	}
	return cfg, nil
}

// newCluster makes the default parts of a cluster other than the
// Worker's own, reached with cfg; uid is its UID when known.
func (w *Worker) newCluster(name string, cfg *rest.Config, uid string, namespaces []string) (*clusterParts, error) {
	rec := metrics.ForCluster(w.opts.Metrics, name)
	client, err := kubernetes.NewForConfig(withMetrics(cfg, rec))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	// EnvUID names the own cluster, never this one.
	parts := w.opts.defaultParts(client, Parts{}, rec, clusterid.Options{UID: uid, LookupEnv: noEnv})
	return &clusterParts{name: name, client: client, parts: parts, namespaces: namespaces, metrics: rec}, nil
}

// defaultParts fills the nil parts of p with the defaults built from
// client, recording to rec; id tunes the default Identity.
func (o *Options) defaultParts(client kubernetes.Interface, p Parts, rec metrics.Recorder, id clusterid.Options) Parts {
	if p.Waiter == nil {
		p.Waiter = jobwatch.New(client, jobwatch.Options{Logger: o.Logger, Metrics: rec, Retry: o.Retry})
	}
	if p.Creator == nil {
		c := o.Create
		if f, ok := p.Waiter.(jobcreate.RunFinder); ok && c.Finder == nil {
			c.Finder = f
		}
		if c.Logger == nil {
			c.Logger = o.Logger
		}
		if c.Metrics == nil {
			c.Metrics = rec
		}
		c.Retry = c.Retry.Or(o.Retry)
		p.Creator = jobcreate.New(client, c)
	}
	if p.Store == nil {
		if o.Secrets.APIKey || o.Secrets.Env {
			so := o.Secrets.Manager
			if so.WorkerName == "" {
				so.WorkerName = o.Name
			}
			if so.Container == "" {
				so.Container = o.Prepare.Container
			}
			if so.Logger == nil {
				so.Logger = o.Logger
			}
			so.Retry = so.Retry.Or(o.Retry)
			p.Store = &managerStore{m: secrets.New(client, so), opts: o.Secrets}
		} else {
			p.Store = noSecrets{}
		}
	}
	if p.Identity == nil {
		id.Logger, id.Retry = o.Logger, o.Retry
		p.Identity = clusterid.New(client, id)
	}
	if p.Jobs == nil && client != nil {
		p.Jobs = client.BatchV1()
	}
	return p
}

// validLabelValue checks a name that is set as a label value.
func validLabelValue(v string) error {
	if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
		return fmt.Errorf("%q must be a valid label value: %s", v, strings.Join(msgs, "; "))
	}
	return nil
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
	return errors.Join(errs...)
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
	job, cfg, err := w.opts.Parts.Preparer.Prepare(ctx, run)
	c, release := w.clusters.own, noRelease
	if err == nil {
		c, release, err = w.clusters.forRun(ctx, cfg.ClusterConfig)
		if err != nil {
			c, release = w.clusters.own, noRelease // counted there: nothing was sent
		}
	}
	defer release()
	ctx, m := beginRun(ctx, c.metrics)
	var res Result
	if err != nil {
		err = fmt.Errorf("worker: run %s: %w", run.ID, err)
	} else {
		res, err = w.run(ctx, c, run, job, cfg)
	}
	res.Requests = m.end(res.Outcome)
	return res, err
}

// run is Run once the Job is prepared and its cluster known.
func (w *Worker) run(ctx context.Context, c *clusterParts, run RunSpec, job *batchv1.Job, cfg *manifest.Config) (Result, error) {
	if w.opts.RetainUntilRecorded {
		retain(job)
	}
	var member *fleet.Member
	if w.fleet != nil {
		var end func()
		var err error
		ctx, member, end, err = w.fleet.fleetRun(ctx, c, run, job, cfg)
		if err != nil {
			return Result{}, fmt.Errorf("worker: run %s: %w", run.ID, err)
		}
		defer end()
	}
	// Each error below is fenced: a run whose replica lost its Lease (or
	// closed) meanwhile says so (ErrNotMember, ErrClosed), whatever step
	// its context ended in, so the caller knows to hand it out again.
	done, err := c.parts.Store.Apply(ctx, job)
	if err != nil {
		return Result{}, fmt.Errorf("worker: run %s: secrets: %w", run.ID, fenced(ctx, err))
	}
	created, err := c.parts.Creator.Create(ctx, job)
	if derr := done(ctx, created, err); derr != nil || err != nil {
		return Result{}, fmt.Errorf("worker: run %s: %w", run.ID, closed(fenced(ctx, errors.Join(err, derr))))
	}
	res := Result{RunID: run.ID, Cluster: c.name, CreatedAt: created.CreationTimestamp.Time}
	res.PID, err = c.parts.Identity.PID(ctx, created.Namespace, created.Name)
	if err != nil {
		return res, fmt.Errorf("worker: run %s: Job %s/%s created, but: %w", run.ID, created.Namespace, created.Name, fenced(ctx, err))
	}
	if member != nil {
		if created, err = w.adopted(ctx, c, member, created, res.PID); err != nil {
			return res, fmt.Errorf("worker: run %s: %w", run.ID, fenced(ctx, err))
		}
	}
	held := hold(created)
	w.log.InfoContext(ctx, "created Job", "run", run.ID, "pid", res.PID.String(), "cluster", c.name)
	if run.Started != nil {
		run.Started(res.PID)
	}

	wo := w.waitOptions(cfg, run.Logs, time.Time{}, run.Events)
	res.Result, err = c.parts.Waiter.Wait(ctx, jobwatch.JobRef{Namespace: held.namespace, Name: held.name}, wo)
	if err != nil {
		err = fenced(ctx, err)
		if ctx.Err() != nil && w.opts.DeleteOnCancel && !errors.Is(err, ErrNotMember) && !errors.Is(err, ErrClosed) {
			// Bounded by the retry policy's deadline, not by ctx, which
			// has ended.
			var kerr error
			if member != nil {
				kerr = w.deleteOwned(context.WithoutCancel(ctx), c, held, member.Name())
			} else {
				kerr = c.parts.Identity.Kill(context.WithoutCancel(ctx), res.PID, 0)
			}
			if kerr != nil && !errors.Is(kerr, clusterid.ErrNotFound) {
				err = errors.Join(err, fmt.Errorf("delete Job %s: %w", res.PID, kerr))
			}
		}
		return res, fmt.Errorf("worker: run %s: %w", run.ID, closed(err))
	}
	w.log.InfoContext(ctx, "run ended", "run", run.ID, "pid", res.PID.String(), "cluster", c.name, "outcome", res.Outcome.String(), "exit_code", res.ExitCode)
	res.Requests = metrics.RequestCountFrom(ctx).Requests() // so far, for OnResult
	if err := w.deliver(ctx, c, held, res, run.OnResult); err != nil {
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
		QueueTimeout:    time.Duration(cfg.QueueTimeoutSeconds) * time.Second,
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
// pods go too, in the cluster whose UID the PID carries: the Worker's
// own, one of Options.Clusters, or one a run reached. A PID of no cluster
// the Worker knows is an *UnknownClusterError (matching
// clusterid.ErrWrongCluster), and nothing is sent; a missing Job is
// clusterid.ErrNotFound.
//
// With the default Identity, the cluster UID read and the delete are
// retried on a transient failure (timeouts, 429, 5xx, dropped
// connections) under Options.Retry, for up to its deadline (3 minutes by
// default) and never past ctx; a delete whose answer was lost and that
// then finds the Job gone returns nil.
func (w *Worker) Kill(ctx context.Context, pid clusterid.PID, grace time.Duration) error {
	if err := pid.Validate(); err != nil {
		return fmt.Errorf("worker: kill: %w", err)
	}
	c, release, err := w.clusters.forPID(ctx, pid, nil)
	if err != nil {
		return fmt.Errorf("worker: kill %s: %w", pid, err)
	}
	defer release()
	return c.parts.Identity.Kill(ctx, pid, grace)
}

// Close stops following runs (their Run and Attach calls return an
// error, and the attaches a Sweep started end), in every cluster, waits
// for them, closes every watch stream, and deletes the Secrets the worker
// created. It leaves Jobs alone. A fleet replica then leaves its fleet,
// giving its Lease up: the other replicas take its runs over at once.
func (w *Worker) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	if w.fleet != nil {
		w.fleet.close()
	}
	stores := w.clusters.close()
	w.running.Wait()
	var leaveErr error
	if w.fleet != nil {
		// Only now that nothing follows a run: the others take them over.
		leaveErr = w.fleet.leave(ctx)
	}
	var errs []error
	for _, cs := range stores {
		if err := cs.store.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cluster %q: %w", cs.cluster, err))
		}
	}
	if len(stores) == 1 && len(errs) == 1 {
		return errors.Join(leaveErr, errors.Unwrap(errs[0]))
	}
	return errors.Join(append(errs, leaveErr)...)
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

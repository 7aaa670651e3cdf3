package worker

import (
	"context"
	"errors"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// The parts a Worker is made of. Each is the subset of a kubeworker package
// that the Worker uses, so a caller can swap any of them or fake it in a
// test; nil in Options.Parts means the default built from the client.

// Parts are the parts of a Worker; a nil one is the default, built from
// the client given to New and tuned by Options' settings.
type Parts struct {
	Preparer Preparer
	Creator  JobCreator
	Store    SecretStore
	Identity Identity
	Waiter   JobWaiter
	Jobs     JobClient
}

// Preparer turns a run into the Job to create, and the rendered Config
// whose watch settings apply to it. Default: the Options.Template rendered
// with the run's values and prepared by manifest.
type Preparer interface {
	Prepare(ctx context.Context, run RunSpec) (*batchv1.Job, *manifest.Config, error)
}

// PreparerFunc adapts a function to a Preparer.
type PreparerFunc func(ctx context.Context, run RunSpec) (*batchv1.Job, *manifest.Config, error)

// Prepare calls f.
func (f PreparerFunc) Prepare(ctx context.Context, run RunSpec) (*batchv1.Job, *manifest.Config, error) {
	return f(ctx, run)
}

// JobCreator creates a prepared Job, exactly once per run. Default: a
// *Creator.
type JobCreator interface {
	Create(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error)
}

// JobCreatorFunc adapts a function to a JobCreator.
type JobCreatorFunc func(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error)

// Create calls f.
func (f JobCreatorFunc) Create(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	return f(ctx, job)
}

// SecretStore moves secret values out of a Job before it is created.
// Apply changes job and returns a function to call once creation is over,
// with the created Job or the error; Close deletes what the store made.
// Default: a *secrets.Manager, when Options.Secrets asks for one.
type SecretStore interface {
	Apply(ctx context.Context, job *batchv1.Job) (done func(ctx context.Context, created *batchv1.Job, err error) error, err error)
	Close(ctx context.Context) error
}

// Identity names Jobs by infrastructure PID and kills them. Default: a
// *clusterid.Cluster.
type Identity interface {
	PID(ctx context.Context, namespace, name string) (clusterid.PID, error)
	Kill(ctx context.Context, pid clusterid.PID, grace time.Duration) error
}

// JobWaiter follows a Job to its Result. Default: a *jobwatch.Watcher,
// which shares one watch per namespace among all runs.
type JobWaiter interface {
	Wait(ctx context.Context, job jobwatch.JobRef, opts jobwatch.WaitOptions) (jobwatch.Result, error)
	Close()
}

// JobWaiterFunc adapts a function to a JobWaiter whose Close does nothing.
type JobWaiterFunc func(ctx context.Context, job jobwatch.JobRef, opts jobwatch.WaitOptions) (jobwatch.Result, error)

// Wait calls f.
func (f JobWaiterFunc) Wait(ctx context.Context, job jobwatch.JobRef, opts jobwatch.WaitOptions) (jobwatch.Result, error) {
	return f(ctx, job, opts)
}

// Close does nothing.
func (JobWaiterFunc) Close() {}

// Optional capabilities of parts: the Worker uses them when a part has
// them, and skips them when not.

// Syncer is a JobWaiter that shares watch streams: Start waits for them
// (WaitForSync), Ready reports them (Synced). *jobwatch.Watcher is one.
type Syncer interface {
	WaitForSync(ctx context.Context, namespaces ...string) error
	Synced() error
}

// UIDReader is an Identity that reads its cluster's UID up front, which
// Start does. *clusterid.Cluster is one.
type UIDReader interface {
	UID(ctx context.Context) (string, error)
}

// JobClient reads, lists, deletes and patches Jobs, for Attach, List,
// Sweep and Options.RetainUntilRecorded. It is client-go's JobsGetter, so
// the BatchV1() of any clientset, real or fake, is one. Default: the
// client's BatchV1().
type JobClient interface {
	Jobs(namespace string) batchv1client.JobInterface
}

// errNoJobs is the error of the calls that need a JobClient when a Worker
// has none.
var errNoJobs = errors.New("worker: no JobClient: New was given no client and Options.Parts.Jobs is nil")

// jobs returns the Jobs of namespace ns in c, through its JobClient.
func (c *clusterParts) jobs(ns string) (batchv1client.JobInterface, error) {
	if c.parts.Jobs == nil {
		return nil, errNoJobs
	}
	return c.parts.Jobs.Jobs(ns), nil
}

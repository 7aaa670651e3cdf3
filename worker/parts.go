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
// test; nil in Options means the default built from the client.

// Preparer turns a run into the Job to create, and the rendered Config
// whose watch settings apply to it. Default: the Options.Template rendered
// with the run's values and prepared by manifest.
type Preparer interface {
	Prepare(ctx context.Context, run Run) (*batchv1.Job, *manifest.Config, error)
}

// JobCreator creates a prepared Job, exactly once per run. Default: a
// *Creator.
type JobCreator interface {
	Create(ctx context.Context, job *batchv1.Job) (*batchv1.Job, error)
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

// JobClient reads, lists, deletes and patches Jobs, for Attach, List,
// Sweep and Options.RetainUntilRecorded. It is client-go's JobsGetter, so
// the BatchV1() of any clientset, real or fake, is one. Default: the
// client's BatchV1().
type JobClient interface {
	Jobs(namespace string) batchv1client.JobInterface
}

// errNoJobs is the error of the calls that need a JobClient when a Worker
// has none.
var errNoJobs = errors.New("worker: no JobClient: New was given no client and Options.Jobs is nil")

// jobs returns the Jobs of namespace ns, through Options.Jobs.
func (w *Worker) jobs(ns string) (batchv1client.JobInterface, error) {
	if w.opts.Jobs == nil {
		return nil, errNoJobs
	}
	return w.opts.Jobs.Jobs(ns), nil
}

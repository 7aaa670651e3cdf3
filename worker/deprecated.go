package worker

import (
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/manifest"
)

// Names that moved to their own packages; they stay here for one release
// so that callers can move at their pace.

// ConfigOptions say how to reach the cluster.
//
// Deprecated: use kubeconfig.Options.
type ConfigOptions = kubeconfig.Options

// Config returns a rest.Config.
//
// Deprecated: use kubeconfig.Load.
func Config(opts ConfigOptions) (*rest.Config, error) { return kubeconfig.Load(opts) }

// ConfigFor returns the options for a template's cluster_config.
//
// Deprecated: use kubeconfig.For.
func ConfigFor(cc *manifest.ClusterConfig) ConfigOptions { return kubeconfig.For(cc) }

// Run is one unit of work.
//
// Deprecated: use RunSpec (Run is also the Worker's method).
type Run = RunSpec

// Job creation moved to package jobcreate.

// Creator creates prepared Jobs, exactly one per run.
//
// Deprecated: use jobcreate.Creator.
type Creator = jobcreate.Creator

// CreateOptions tune a Creator.
//
// Deprecated: use jobcreate.Options.
type CreateOptions = jobcreate.Options

// CreateError is a refused or failed creation.
//
// Deprecated: use jobcreate.Error.
type CreateError = jobcreate.Error

// RunFinder names the Jobs of a run.
//
// Deprecated: use jobcreate.RunFinder.
type RunFinder = jobcreate.RunFinder

// NewCreator returns a Creator.
//
// Deprecated: use jobcreate.New.
func NewCreator(client kubernetes.Interface, opts CreateOptions) *Creator {
	return jobcreate.New(client, opts)
}

// Errors and names of Job creation.
//
// Deprecated: use jobcreate's.
var (
	ErrDuplicateRun = jobcreate.ErrDuplicateRun
	ErrNameTaken    = jobcreate.ErrNameTaken
)

// AnnotationSpecHash holds the hash of the spec a Job was made from.
//
// Deprecated: use jobcreate.AnnotationSpecHash.
const AnnotationSpecHash = jobcreate.AnnotationSpecHash

// RunJobName is the name of a run's Job.
//
// Deprecated: use jobcreate.RunJobName.
func RunJobName(generateName, runID string) string { return jobcreate.RunJobName(generateName, runID) }

// SpecHash hashes what a Job is made from.
//
// Deprecated: use jobcreate.SpecHash.
func SpecHash(job *batchv1.Job) string { return jobcreate.SpecHash(job) }

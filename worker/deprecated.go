package worker

import (
	"k8s.io/client-go/rest"

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

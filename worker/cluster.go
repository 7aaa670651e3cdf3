package worker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
)

// Cluster is a cluster a Worker runs Jobs in besides its own, given in
// Options.Clusters by whoever runs the worker, and so trusted: its
// kubeconfig may name exec plugins and files. Start readies it with the
// Worker's own cluster; List and Sweep look in it; Attach and Kill reach
// it by the cluster UID in a PID; a run reaches it with a cluster_config
// whose context_name is its Name and that has no config, or with a
// kubeconfig that connects the same way (same server, CA and
// credentials: kubeconfig.Fingerprint), unless Config has a Transport,
// WrapTransport or Dial, which may add what a fingerprint cannot see.
type Cluster struct {
	// Name names the cluster in Result.Cluster, RunInfo.Cluster, the
	// metrics' cluster label and the logs. Required: a valid label value,
	// unique, and not Options.ClusterName.
	Name string
	// Config reaches the cluster. A QPS or Burst of 0 gets kubeconfig's
	// DefaultQPS and DefaultBurst. Give Config, or Kubeconfig.
	Config *rest.Config
	// Kubeconfig is a kubeconfig file's contents, with Context naming
	// the context to use (default: its current context).
	Kubeconfig []byte
	Context    string
	// Namespaces are where List and Sweep look in this cluster, and the
	// streams Start syncs. Default: those of the Worker's own cluster
	// (Options.Namespaces, with its default).
	Namespaces []string
}

// RunClusters say whether a run's template may name a cluster of its
// own (Prefect's cluster_config: a kubeconfig object and a context name).
// The zero value refuses them: a run with a cluster_config is then an
// error before anything is created, never run in the worker's own
// cluster.
type RunClusters struct {
	// Allow takes a run's cluster_config: its Job is created, followed,
	// killed, listed and swept in the cluster it names. Default: false.
	Allow bool
	// AllowUnsafeKubeconfigs lets a run's kubeconfig run a command on the
	// worker's host (exec, auth-provider), read the worker's files
	// (tokenFile, client-certificate, client-key, certificate-authority)
	// or set a proxy-url, all refused by default: a run's values are not
	// trusted. Default: false.
	AllowUnsafeKubeconfigs bool
	// IdleTimeout is how long a run's cluster is kept, with its client
	// and watch streams, once no run, Attach or Sweep uses it. It is then
	// let go (streams closed; the Secrets its store made are deleted at
	// Close, since they may serve later runs) and connected again when a
	// run names it. Default: DefaultClusterIdleTimeout.
	IdleTimeout time.Duration
}

// DefaultClusterIdleTimeout is RunClusters.IdleTimeout's default.
const DefaultClusterIdleTimeout = 5 * time.Minute

// ErrRunClustersOff is the error of a run whose template names a cluster
// (cluster_config) on a Worker whose Options.RunClusters do not allow it.
var ErrRunClustersOff = errors.New("this worker does not take per-run clusters (Options.RunClusters.Allow)")

// ErrUnknownCluster is matched, through errors.Is, by an
// [*UnknownClusterError].
var ErrUnknownCluster = errors.New("the PID names a cluster this worker does not know")

// UnknownClusterError is the error of Attach and Kill given a PID whose
// cluster UID is none of the Worker's clusters' (its own, those of
// Options.Clusters, and those runs have used). Nothing is sent to any
// cluster about it. It matches ErrUnknownCluster and
// clusterid.ErrWrongCluster, and unwraps to the *clusterid.WrongClusterError
// of the Worker's own cluster.
type UnknownClusterError struct {
	// PID is the PID given; PID.ClusterUID is the UID no cluster has.
	PID clusterid.PID
	// Known are the UIDs of the clusters the Worker knows, its own first.
	Known []string
}

func (e *UnknownClusterError) Error() string {
	return fmt.Sprintf("worker: PID %s names cluster %q, which this worker does not know (it knows %s)",
		e.PID, e.PID.ClusterUID, strings.Join(quoteAll(e.Known), ", "))
}

// Is reports whether target is ErrUnknownCluster or clusterid.ErrWrongCluster.
func (e *UnknownClusterError) Is(target error) bool {
	return target == ErrUnknownCluster || target == clusterid.ErrWrongCluster
}

// Unwrap returns the *clusterid.WrongClusterError of the Worker's own
// cluster.
func (e *UnknownClusterError) Unwrap() error {
	own := ""
	if len(e.Known) > 0 {
		own = e.Known[0]
	}
	return &clusterid.WrongClusterError{PID: e.PID, Want: own}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// checkClusters checks Options.Clusters and ClusterName.
func (o *Options) checkClusters() error {
	var errs []error
	seen := []string{o.ClusterName}
	for i, c := range o.Clusters {
		where := fmt.Sprintf("Options.Clusters[%d]", i)
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: Name is required", where))
		case slices.Contains(seen, c.Name):
			errs = append(errs, fmt.Errorf("%s: Name %q is taken (names are unique, and not Options.ClusterName)", where, c.Name))
		default:
			if err := validLabelValue(c.Name); err != nil {
				errs = append(errs, fmt.Errorf("%s: Name: %w", where, err))
			}
		}
		seen = append(seen, c.Name)
		if (c.Config == nil) == (c.Kubeconfig == nil) {
			errs = append(errs, fmt.Errorf("%s (%q): give Config or Kubeconfig, one of them", where, c.Name))
		}
		if c.Config != nil && c.Context != "" {
			errs = append(errs, fmt.Errorf("%s (%q): Context applies to Kubeconfig, not Config", where, c.Name))
		}
	}
	if o.ClusterName != "" {
		if err := validLabelValue(o.ClusterName); err != nil {
			errs = append(errs, fmt.Errorf("Options.ClusterName: %w", err))
		}
	}
	if o.RunClusters.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("Options.RunClusters.IdleTimeout is negative (%s)", o.RunClusters.IdleTimeout))
	}
	return errors.Join(errs...)
}

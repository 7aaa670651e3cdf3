package metrics

// ClusterRecorder is a Recorder that can label what it records by
// cluster. metrics/prom's Recorder is one.
type ClusterRecorder interface {
	Recorder
	// ForCluster returns a Recorder that records what happens in the
	// named cluster (a name the operator gave it, or its UID): the same
	// facts, labelled with cluster. It is safe for concurrent use, and
	// two calls with one name return Recorders that record together.
	ForCluster(cluster string) Recorder
}

// ForCluster returns the Recorder for what happens in the named
// cluster: r.ForCluster(cluster) when r is a ClusterRecorder; r itself
// when it is not (a Recorder without cluster support records every
// cluster together, Discard among them); Discard when r is nil.
//
// A Worker that runs Jobs in several clusters calls it once per cluster
// it talks to, and gives the result to that cluster's parts (jobwatch,
// jobcreate) and to its transport (WrapTransport), so that each fact
// and each API request is counted under the cluster where it happened.
// Wrap a cluster's transport with its own Recorder only: one wrapped
// with both r (kubeconfig.Load with Options.Metrics) and the cluster's
// counts each request twice, once per cluster label.
func ForCluster(r Recorder, cluster string) Recorder {
	switch r := r.(type) {
	case nil:
		return Discard{}
	case ClusterRecorder:
		return r.ForCluster(cluster)
	default:
		return r
	}
}

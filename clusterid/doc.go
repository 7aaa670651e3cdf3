// Package clusterid names the cluster a client talks to and the Jobs in it.
//
//	ids := clusterid.New(clientset, clusterid.Options{})
//	pid, err := ids.PID(ctx, job.Namespace, job.Name)
//	// store pid.String(); later, maybe in another process:
//	pid, err = clusterid.ParsePID(stored)
//	err = ids.Kill(ctx, pid, 30*time.Second)
//
// # Cluster UID
//
// Kubernetes has no cluster ID, so, as Prefect does, [Cluster.UID] uses the
// metadata.uid of the kube-system namespace, unless [Options.UID] or the
// [EnvUID] environment variable gives one (for an identity that may not
// read namespaces). The namespace is read once per [Cluster]; concurrent
// first callers share that read, and a failed read is tried again by the
// next caller.
//
// # PIDs
//
// A [PID] is "<cluster-uid>:<namespace>:<job-name>", Prefect's
// infrastructure PID. [ParsePID] and [PID.String] round-trip; a malformed
// PID is a [*PIDError] that names the bad part.
//
// # Kill
//
// [Cluster.Kill] deletes a Job and, by foreground propagation, its pods. It
// refuses a PID of another cluster with a [*WrongClusterError] and reports
// a missing Job as [ErrNotFound].
//
// # RBAC
//
// Reading the UID needs get on namespaces (kube-system only, if the role
// names it); Kill needs delete on jobs.batch in the Job's namespace.
package clusterid

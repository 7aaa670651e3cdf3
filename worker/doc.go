// Package worker composes kubeworker's parts into a [Worker] that runs a
// unit of work as a Kubernetes Job and follows it to a typed result; it
// owns the Worker, its small part interfaces, and the RBAC rules and
// preflight of what it needs.
//
//	cfg, err := kubeconfig.Load(kubeconfig.Options{}) // kubeconfig, in-cluster, or default rules
//	client, err := kubernetes.NewForConfig(cfg)
//	w, err := worker.New(client, worker.Options{Name: "etl", Namespace: "runs"})
//	defer w.Close(ctx)
//	err = w.Start(ctx) // optional: caches synced before the first Run
//	res, err := w.Run(ctx, worker.RunSpec{ID: runID, Values: map[string]any{"image": "etl:1.4"}, Logs: os.Stdout})
//	// res.Outcome, res.ExitCode, res.PID, res.LogTail
//
// # Where things live
//
//   - A run: [RunSpec] in, [Result] out. Result embeds jobwatch.Result, so
//     res.Outcome is a jobwatch.Outcome (jobwatch.Succeeded,
//     jobwatch.OOMKilled, …) and res.PID a clusterid.PID.
//   - The template and its Config: package manifest (manifest.Config is a
//     rendered template; manifest.Run is what Prepare needs of a run).
//   - Client config: package kubeconfig. Job creation with retry: package
//     jobcreate (its *jobcreate.Error carries the API server's refusal and
//     a hint). The retry policy of every call: package retry.
//   - The polling loop and its health endpoints: package agent. The
//     install manifest: package install.
//
// # Parts
//
// A Worker is made of small interfaces that this package owns (see
// parts.go): a [Preparer] renders and prepares the Job (package manifest),
// a [JobCreator] creates it exactly once per run (package jobcreate), a
// [SecretStore] moves secret values out of its spec (package secrets), an
// [Identity] names it by PID and kills it (package clusterid), and a
// [JobWaiter] follows it (package jobwatch). [Options.Parts] takes any of
// them, a function at a time with [PreparerFunc], [JobCreatorFunc] and
// [JobWaiterFunc]; nil means the default built from the client, which the
// other fields of [Options] tune (a setting for a part that Parts replaces
// is an error). Optional capabilities of a part, [Syncer] and [UIDReader],
// are used when present. Swap a part to change a behaviour, or fake it to
// test a scheduler without a cluster.
//
// # Many clusters
//
// A Worker runs Jobs in its own cluster (the client given to New) and in
// others: those given up front in [Options.Clusters] (trusted; Start
// readies them, Ready covers them, List and Sweep look in them) and, when
// [Options.RunClusters] allow it, the cluster a run's template names in
// its cluster_config (a kubeconfig object and a context name, as
// Prefect's). A cluster_config with only a context_name picks a cluster
// given up front. Each cluster has its own default parts (client, shared
// watch streams, identity, secret store), made once and shared by every
// run to it; a run's cluster no run has used for RunClusters.IdleTimeout
// is let go. A run's kubeconfig is untrusted: one that would run a
// command (exec, auth-provider), read the worker's files or set a proxy
// is refused (kubeconfig.ErrUntrusted) unless the Worker opts in. Kill
// and Attach route a PID by its cluster UID; Result.Cluster,
// RunInfo.Cluster and the metrics' cluster label say where a run ran.
//
// # A fleet of replicas
//
// Several processes, each a Worker with the same Name and [Options.Fleet],
// share the runs: each holds a Lease of its own (package fleet) and names
// itself on the Jobs it creates (jobcreate.AnnotationOwner). When one
// departs (Close gives its Lease up; a crash lets it expire), the live
// replica that a run's ID hashes to claims the run's Job (an update with
// the Job's resourceVersion as precondition: one claim wins), follows it
// on its shared streams and hands the Result to [Fleet.Sink], at least
// once, keyed by run ID. A replica that loses its Lease stops following
// at once ([ErrNotMember]), writes nothing more to those Jobs, and joins
// again as a new member. A Run of a run another live replica follows is
// an [*OwnedError]. [Worker.Cancel] and [Worker.CancelRun], from any
// replica, mark the Job and delete it: whoever follows it reports
// jobwatch.Cancelled, the caller's doing. [FleetRules] lists what a
// replica needs besides Rules.
//
// # Errors
//
// [ErrClosed] after Close, whichever part noticed; a PID of a cluster the
// Worker does not know is an [*UnknownClusterError] (matching
// clusterid.ErrWrongCluster) from Kill and Attach alike, and nothing is
// sent; a run's cluster_config on a Worker that does not take them is
// [ErrRunClustersOff], before anything is created; a Job that is not this
// worker's is a [*NotManagedError]; a refused create is a
// *jobcreate.Error.
//
// # Permissions
//
// [Rules] lists what the library needs, and no more: on jobs create, get
// (adopting a run's Job), list and watch (the shared streams), delete
// (Kill) and patch (the TTL set back after the result is recorded,
// Options.RetainUntilRecorded); on pods list and watch; get on pods/log;
// list on events (diagnosing a pod that does not start); and, when
// secrets are used, get, create, update and delete on secrets. The
// end-to-end tests remove each rule in turn and show a scenario that then
// fails. Reading the cluster's UID for PIDs needs get on the kube-system
// namespace (a ClusterRole), unless the UID is given. [Worker.Preflight]
// checks them, and a server-side dry run of the Job, before any work.
package worker

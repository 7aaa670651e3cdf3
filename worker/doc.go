// Package worker composes kubeworker's parts into a [Worker] that runs a
// unit of work as a Kubernetes Job and follows it to a typed result.
//
//	cfg, err := worker.Config(worker.ConfigOptions{}) // kubeconfig, in-cluster, or default rules
//	client := kubernetes.NewForConfigOrDie(cfg)
//	w, err := worker.New(client, worker.Options{Name: "etl", Namespace: "runs"})
//	defer w.Close(ctx)
//	err = w.Start(ctx) // optional: caches synced before the first Run
//	res, err := w.Run(ctx, worker.Run{ID: runID, Values: map[string]any{"image": "etl:1.4"}, Logs: os.Stdout})
//	// res.Outcome, res.ExitCode, res.PID
//
// # Parts
//
// A Worker is made of small interfaces that this package owns (see
// parts.go): a [Preparer] renders and prepares the Job (package manifest),
// a [JobCreator] creates it exactly once per run ([Creator]), a
// [SecretStore] moves secret values out of its spec (package secrets), an
// [Identity] names it by PID and kills it (package clusterid), and a
// [JobWaiter] follows it (package jobwatch). [Options] takes any of them;
// nil means the default built from the client. Swap one to change a
// behaviour, or fake it to test a scheduler without a cluster.
//
// # Building a worker process
//
// An [Agent] polls a [RunSource] the caller implements, runs what it gets
// with a concurrency limit, backs off when idle and shuts down gracefully;
// it starts the Worker ([Worker.Start]) before its first poll;
// [Agent.HealthHandler] serves liveness and readiness.
// [DeploymentManifest] writes the ServiceAccount, Role, RoleBinding and
// Deployment to run such a process in a cluster.
//
// # Permissions
//
// [Rules] lists what the library needs, and no more: on jobs create, get
// (adopting a run's Job), list (finding it after an ambiguous create),
// watch, delete (Kill) and patch (the TTL set back after the result is
// recorded, Options.RetainUntilRecorded); on pods list and watch; get on pods/log; list
// on events (diagnosing a pod that does not start); and, when secrets are
// used, get, create, update and delete on secrets. The end-to-end tests
// remove each rule in turn and show a scenario that then fails. Reading
// the cluster's UID for PIDs needs get on the kube-system namespace (a
// ClusterRole), unless the UID is given.
package worker

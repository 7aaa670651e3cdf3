// Package secrets keeps a run's secret values out of its Job spec, in
// Kubernetes Secrets that it creates and later deletes.
//
//	m := secrets.New(clientset, secrets.Options{WorkerName: "etl-worker"})
//	defer m.Close(ctx)
//
//	// job is a prepared Job (manifest.Config.Prepare).
//	if _, err := m.ReplaceAPIKey(ctx, job); err != nil { ... }
//	rs, err := m.PrepareRun(ctx, job) // optional: all plain env values
//	if err != nil { ... }
//	defer rs.Discard(ctx)
//	created, err := client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
//	if err != nil { ... }
//	err = rs.Adopt(ctx, created)
//
// # The API key
//
// As Prefect's worker does, [Manager.ReplaceAPIKey] upserts the API key
// into one Secret per worker and namespace, named by [APIKeySecretName],
// and points the run container's env entry at it with
// valueFrom.secretKeyRef; or, given an existing Secret in
// [Options.APIKeySecret], only points the entry at that.
//
// # Env as a Secret
//
// [Manager.PrepareRun] goes further: every plain env value of the run
// moves into a per-run Secret read through envFrom. The Job becomes its
// owner ([RunSecret.Adopt]) so the garbage collector deletes it with the
// Job; if the Job is never created, [RunSecret.Discard] deletes it.
//
// # Writes and cleanup
//
// Every upsert reads, then updates or creates, inside client-go's
// retry.RetryOnConflict, reading afresh on each try. Every request is
// retried on a transient failure (timeouts, 429, 5xx, dropped
// connections) under Options.Retry, kubeworker's one retry policy
// (package retry). [Manager.Close]
// deletes the Secrets the Manager created and still tracks, and joins the
// errors. No Secret's data reaches the Logger or an error.
//
// # RBAC
//
// get, create, update and delete on secrets in the Jobs' namespaces.
package secrets

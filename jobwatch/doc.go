// Package jobwatch follows Kubernetes Jobs to typed results: how each run
// ended (an [Outcome]), the run container's exit code, the raw reasons,
// its log, and its pod phases as events.
//
//	w := jobwatch.New(clientset, jobwatch.Options{})
//	defer w.Close()
//	res, err := w.Wait(ctx, jobwatch.JobRef{Namespace: ns, Name: job.Name}, jobwatch.WaitOptions{
//		Container: "main",                  // the run container, by name
//		Deadline:  2 * time.Hour,           // total; job_watch_timeout_seconds
//		Logs:      os.Stdout,               // follow the run container's log
//		Events:    jobwatch.EventFunc(record),
//	})
//	if err != nil {
//		return err // ctx ended, the Watcher closed, or a bad JobRef
//	}
//	switch res.Outcome {
//	case jobwatch.Succeeded:
//	case jobwatch.Failed, jobwatch.OOMKilled:
//		log.Printf("exit code %d: %s; log ends:\n%s", res.ExitCode, res.Message, strings.Join(res.LogTail, "\n"))
//	case jobwatch.Unschedulable, jobwatch.ImagePullError, jobwatch.CannotCreatePod, jobwatch.NeverStarted:
//		log.Printf("never started: %v: %s", res.Diagnosis.Cause, res.Diagnosis.Message)
//	}
//	if res.Outcome.Fault() == jobwatch.FaultInfrastructure {
//		retry() // not the run's fault: eviction, node loss, unschedulable, ...
//	}
//
// Any Job whose labels (and whose pod template's labels) match
// [Options.Selector] can be followed, including one created by another
// process: a restarted worker finds its runs again by name.
//
// # One stream per namespace, not one per run
//
// A Watcher runs, per namespace, one client-go shared informer for Jobs and
// one for pods, both filtered server-side by the selector (default
// app.kubernetes.io/managed-by=kubeworker). Each [Watcher.Wait] registers a
// waiter keyed by the Job's name; the informers' handlers wake only the
// waiters of the Job that changed, and each waiter then reads the current
// state from the cache. So N concurrent runs cost two watch requests per
// namespace, not 2N (Prefect's worker opens a Job watch and a pod watch per
// run; its later observer watches the whole cluster), and the API server
// sends each change once. A transform trims every cached object to what an
// Outcome needs, so a tracked run costs a few kilobytes of heap. Streams
// start with the first Wait in a namespace and run until [Watcher.Close]:
// a warm stream already holds a Job that finished before its Wait began,
// and a worker uses few namespaces. Log following is per run (one log
// stream per pod), as logs cannot be shared, and only for a Wait given a
// Logs writer. Without one, the last lines that every Result carries
// (Result.LogTail) cost one plain request for that many lines, made when
// the run has ended: no stream is held open through the run.
//
// Wait is level-driven: on every wake-up it classifies the Job and its pods
// as they are now ([Classify]), so a missed or repeated watch event cannot
// mislead it. Only what the cache can no longer tell is remembered from
// events: the last state of a deleted Job or pod.
//
// # Why a pod did not start
//
// A [Diagnosis] comes with every Outcome of a pod that never ran. Its
// [Cause] is typed and its fields say the rest: which resource nodes
// lacked and on how many nodes, the taint the pod does not tolerate, a
// node selector or affinity no node matches, an unbound or missing
// PersistentVolumeClaim (all from the scheduler's FailedScheduling
// message, see [SchedulingFailure]); the image that cannot be pulled; and,
// from the Job's FailedCreate event, the ResourceQuota, the missing
// service account, Pod Security or other admission that refuses the pod.
// A pod the API server refuses ends the Wait at once (CannotCreatePod):
// when the Job's status shows that its controller has tried and made no
// pod, Wait reads the Job's events (at once, then with a back-off up to
// 30 s while that lasts; a healthy Job costs no request), rather than
// wait for the pod start timeout.
//
// # Job-native semantics
//
//   - The Job controller's own decision ends the Wait: SuccessCriteriaMet
//     and FailureTarget (Kubernetes 1.31 and later) count as soon as they
//     appear, before the controller has cleaned up pods.
//   - A Job that can end one way only does not wait for its controller,
//     which batches pod updates for a second: a one-pod Job with no
//     deadline, success or failure policy ends when its pod Succeeded, or
//     Failed with backoffLimit 0 (Result.FromPod).
//   - Pod failure policies: manifest.FailurePolicy makes one in which
//     disruptions (DisruptionTarget) are retried without counting against
//     backoffLimit and chosen exit codes fail the Job at once (JobReason
//     PodFailurePolicy). Wait reports the Job as it ends.
//   - Native sidecars (init containers with restartPolicy Always) and
//     sidecars listed before the run container never give the exit
//     code: the run container is found by name (WaitOptions.Container;
//     default the first of the pod's containers, which a native sidecar
//     never is).
//   - Queued Jobs: a Job suspended (spec.suspend), as Kueue creates them,
//     is reported to the event sink as ReasonQueued, and its pod start
//     timeout waits for it to be resumed (ReasonResumed). A Job suspended
//     again after its pods ran (Kueue preempted it) is queued again: the
//     pods deleted with the suspension end nothing, and the pod start
//     timeout waits for the next resume. See the Kueue section.
//   - A pod deleted before it reported how it ended (PodVanished) has no
//     exit code; neither a success nor an exit code is ever guessed.
//
// # Kueue
//
// A Job labelled with Kueue's queue-name (manifest.LabelQueueName, which
// manifest.Prepare sets with the Job suspended) is followed through
// Kueue (v0.15 and later; v0.17's names): Wait reads its Workload, the
// kueue.x-k8s.io object Kueue makes for it, and reports what Kueue does
// as Events (Event.Workload set) and in Result.Queue ([Queueing]):
//
//   - Queued: ReasonWaitingForQuota while the Workload waits for quota
//     in its ClusterQueue (QuotaReserved False, reason Pending: Kueue's
//     message says what is short), ReasonInadmissible when its LocalQueue
//     or ClusterQueue does not exist or is stopped or inactive (reason
//     Inadmissible).
//   - Admitted: ReasonAdmitted (Admitted True), with the ClusterQueue
//     (status.admission.clusterQueue) and when; Kueue then resumes the
//     Job and its pod start timeout starts, from the admission.
//   - Preempted or evicted: ReasonPreempted (Evicted True, reason
//     Preempted; Event.KueueReason the Preempted condition's:
//     InClusterQueue, InCohortReclamation, InCohortFairSharing,
//     InCohortReclaimWhileBorrowing), ReasonEvicted for Kueue's other
//     reasons (PodsReadyTimeout, AdmissionCheck, ClusterQueueStopped,
//     ...). Kueue suspends the Job and deletes its pods; the run is not
//     over: it is queued again and goes on until the Job really ends, so
//     a preempted run that is admitted again and succeeds is one Result,
//     Succeeded, with Queue.Preemptions 1.
//   - Requeued: ReasonRequeued, once Kueue has released the quota and
//     put the Workload back in its queue (Requeued True).
//
// Three Outcomes belong to Kueue. NotAdmitted: not admitted within
// WaitOptions.QueueTimeout, counted from the start of Wait and afresh
// from each eviction, or at once when Kueue says the LocalQueue does not
// exist (a typed Diagnosis quickly, not a pod start timeout); its
// Diagnosis names the LocalQueue and gives Kueue's last QuotaReserved
// reason and message (CauseQueueMissing, CauseQueueInactive,
// CauseQuotaWait, CauseNoWorkload). Deactivated: Kueue deactivated the
// Workload (spec.active false: its requeuing limit reached, an admission
// check rejected it, or someone deactivated it), with Kueue's reason and
// message. A Workload deactivated past its maximum execution time ends
// DeadlineExceeded, with reason MaximumExecutionTimeExceeded. All leave
// the Job as Kueue keeps it (suspended).
//
// The Workloads of a namespace are read like its Jobs and pods: one
// shared informer (list and watch, surviving dropped connections and
// 410 Gone), opened by the first Wait there that follows a queued Job
// and run until Close, indexed by the Job UID label Kueue puts on them
// (kueue.x-k8s.io/job-uid). It reads them as unstructured objects
// through [Options.Dynamic] (default: a dynamic client on the
// clientset's own connection), so kubeworker does not depend on Kueue,
// and parses only the fields it needs: one that is missing or odd is
// ignored. Every state the stream delivers is looked at, so a
// preemption and requeue between two looks of a Wait are still
// reported; a state the stream itself missed (it was down) is not,
// though Queue.Preemptions counts Kueue's own tally
// (status.schedulingStats). Without Kueue following (a fake clientset
// and no Options.Dynamic), or when the Workload API is not served
// (Kueue not installed: said once in the log, then retried with a
// back-off of up to 30 s, never in a hot loop, never blocking a Wait),
// a queued Job is followed as a plain suspended Job, and QueueTimeout
// still applies (CauseNoWorkload).
//
// Queue positions: where Kueue's visibility API is served (Kueue's
// VisibilityOnDemand feature, its APIService for
// visibility.kueue.x-k8s.io registered and available), a run waiting
// for admission gets its place in its LocalQueue and in the ClusterQueue
// behind it, 1 for the head ([QueuePosition]): in Result.Queue.Position
// (the last one known) and as ReasonQueuePosition events when it is
// first known and when it changes, at most one per read. The read is
// shared: every [Options.QueuePositionInterval] (default 5 s), one GET
// of localqueues/{name}/pendingworkloads per LocalQueue in which a
// followed run waits serves all the runs waiting there; no request is
// made while none waits, and the reader's goroutine ends. One page is
// read, Kueue's default of 1000 Workloads: a run deeper in its
// LocalQueue keeps its last known position (nil if none), so that the
// cost stays one request per queue, and Kueue sorts its whole
// ClusterQueue for every request whatever the page. Where the API is not
// served (a 404, or a 503 from an APIService with no server behind it)
// or refused to the client, Position stays nil and nothing else
// changes: said once in the log (Debug; Info when refused), then asked
// again every 2 minutes, never failing a run. Other failures (timeouts,
// an odd answer) are logged at Debug and asked again at the next
// interval. The LocalQueue's and ClusterQueue's status.pendingWorkloads
// give only a count.
//
// # Attribution
//
// [Outcome.Fault] says whether an ending is the run's own (a non-zero
// exit, an OOM kill of its container, its retries or deadline used up) or
// the infrastructure's (eviction, preemption, node loss, image pull,
// unschedulable, a pod that cannot be created, a Job or pod deleted from
// outside, a queue that does not admit it or deactivates it), so a
// scheduler can retry the latter. A run stopped on purpose is neither: a
// Job marked with AnnotationCancelled (worker.Worker.Cancel marks it
// before deleting it) and deleted before it finished is Cancelled,
// attributed to the caller (FaultCaller), with the caller's reason as
// Message; an unmarked Job deleted from outside stays Deleted.
//
// # Faults
//
//   - Dropped connections: the informers watch again from the last
//     resourceVersion seen; log streams reopen from the last line written.
//   - 410 Gone (etcd compaction, or an API server restart with the watch
//     cache on): the informers relist and resume, and objects deleted
//     meanwhile come back as deletions (cache.DeletedFinalStateUnknown),
//     which Wait treats as deleted. Logged at Debug.
//   - API server restarts: as dropped connections, plus a relist if needed.
//   - Job and pod streams are not ordered with each other, and a stream
//     backing off after dropped connections lags: when a Job has ended but
//     the pod states its counts imply have not arrived within a couple of
//     seconds, Wait lists the Job's pods itself (one request) before it
//     concludes, so the exit code is never guessed.
//   - Log streams that never end (kwok's do not): the stream of a pod is
//     cut once Wait sees the pod finish, and a last plain read picks up the
//     rest. The API's sinceTime has whole-second resolution; lines carry
//     full timestamps and a reopened stream drops what was already written,
//     so no line is lost or repeated. A log failure never changes a Result.
//
// What Wait cannot know: a Job deleted and created again under the same
// name while the stream was down is seen as deleted; a Job that ended and
// was deleted while the stream was down is reported with the last state
// the stream saw.
//
// # Permissions
//
// The client needs get, list and watch on jobs, list and watch on pods,
// get on pods/log, and list on events, in each namespace waited on; no
// pod is read by get (a pod's full spec, for the image or the claims of a
// pod that did not start, comes from a list by name). Without get on
// pods/log, Wait writes no log and Result.LogTail stays empty.
// Optionally, list on nodes (cluster-wide) lets a Diagnosis name the
// taints a pod does not tolerate; without it the Diagnosis counts them.
// Following Kueue needs list and watch on workloads.kueue.x-k8s.io in
// each namespace of queued Jobs; without them (said once at Warn),
// queued Jobs are followed as plain suspended Jobs. Queue positions need
// get on localqueues/pendingworkloads in visibility.kueue.x-k8s.io in
// those namespaces; without it (said once at Info), Position stays nil.
package jobwatch

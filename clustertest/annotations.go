package clustertest

// Pod fates. A test scripts what the fake kubelet (kwok) does with a pod by
// putting annotations on the pod template; this comment is the one place they
// are documented, and the pod-*.yaml stages under stages/ implement them.
//
// Without annotations, a pod of a Job is scheduled, becomes Running and at
// once Succeeded with every container terminated, exit code 0, reason
// Completed. Its containers' logs are empty but readable. A pod not owned by
// a Job stays Running until it is deleted, like a server.
//
// Annotations (values are strings, as annotations always are):
//
//   - [AnnotationExitCode] "3": every container of the pod exits with 3.
//     [AnnotationExitCode]+"."+container ("test.kubeworker.io/exit-code.main")
//     overrides it for one container. Default 0. The pod is Succeeded when
//     every container exits 0, else Failed. An exit code that is not an
//     integer counts as 0.
//   - [AnnotationReason] "OOMKilled": the terminated reason of every
//     container; [AnnotationReason]+"."+container for one. Default Completed
//     for exit code 0, else Error. An OOM kill, as the kubelet reports it, is
//     exit code 137 with reason OOMKilled.
//   - [AnnotationDelay] "3s": how long the pod stays Running before it
//     finishes or is evicted (a Go duration). Default 0. Changing it on a
//     running pod restarts the wait, so "1h" holds a pod until the test
//     sets "0s".
//   - [AnnotationJitter] "6s": with it, the wait is uniformly random between
//     delay and jitter. A jitter shorter than delay replaces delay (kwok's
//     rule).
//   - [AnnotationEvict] "The node was low on resource: memory.": the pod is
//     evicted instead of finishing: phase Failed, reason Evicted, the value as
//     message, condition DisruptionTarget (reason TerminationByKubelet),
//     containers terminated with exit code 137, and a Warning event Evicted.
//     Takes the place of exit-code and reason.
//   - [AnnotationImagePull] "ErrImagePull" or "ImagePullBackOff": the image
//     never pulls. Every container waits with that reason, the pod stays
//     Pending (and its Job active) until deleted.
//   - [AnnotationFailAttempts] "2": the first 2 pods of the Job, in the
//     order they were created, fail whatever the other annotations say:
//     every container exits 1 with reason Error and the pod is Failed.
//     Later pods follow the other annotations. So with backoffLimit 2 or
//     more a Job succeeds on its third pod, or ends as the other
//     annotations script it (exit-code "3": its third pod exits 3). The
//     harness makes an attempt fail by rewriting its annotations before
//     kwok starts it: exit-code "1", reason "Error", any per-container
//     exit-code or reason likewise, and evict removed; the pod shows them.
//     Delay, jitter and logs apply to every attempt alike; image-pull
//     still keeps every pod from starting. Only pods with a Job (or other
//     controller) count, and only those carrying the annotation. A value
//     that is not an integer counts as 0.
//   - [AnnotationLog] "line 1\nline 2": the log every container starts with,
//     one line per "\n"; [AnnotationLog]+"."+container for one container.
//     "$(NAME)" in a line is expanded against the container's env as the
//     kubelet expands a container's args (so "$(GREETING)" logs what
//     `echo $(GREETING)` would): each env value is expanded against the
//     entries before it in the list, a name not defined stays as written,
//     and "$$" is a "$".
//     Lines get increasing timestamps. More lines can be added to a running
//     pod with [Cluster.AppendPodLog]; a follow stream sees them as they come.
//     A follow stream never ends by itself, even when the pod has finished.
//     A line may be long: each is one CRI entry, read back whole, as one
//     line (with timestamps=true, one timestamp), in a plain read or a
//     follow. There is no limit per line: 250,000 bytes from the annotation
//     and 4 MiB from [Cluster.AppendPodLog] were checked. The annotation's
//     limit is the API server's, 256 KiB (262,144 bytes) for all of a pod
//     template's annotations, keys and values, together. (containerd
//     would store a long line as 16 KiB partial entries; the kubelet
//     serves them joined, so readers see the same line.)
//   - [AnnotationLogPartial] (any value): the log ends without a newline,
//     as when a program's last print had none: the last line of the
//     container's [AnnotationLog] (or per-container form) is written as a
//     CRI partial entry ("<time> stdout P <text>"), so "a\nb\nc" reads
//     back exactly "a\nb\nc" (a final "\n" in the value is dropped
//     first). With timestamps=true that last line still has its timestamp.
//     Lines appended later by [Cluster.AppendPodLog] continue that last
//     line, with no timestamp of their own for the first, as the kubelet
//     serves a line printed in two writes.
//
// Native sidecars (init containers with restartPolicy Always) run beside the
// containers: Running and ready once the pod starts, then stopped when the
// pod finishes, with exit code 0 unless [AnnotationExitCode]+"."+name says
// otherwise (the whole-pod exit code does not apply to them). They never
// decide the pod's phase, as with the kubelet. Other init containers have
// completed (exit code 0) by the time the pod runs.
//
// Never scheduled needs no annotation: ask for more than a node has (the
// default node has cpu 1000, so a request of cpu 1001 does it), and the real
// scheduler leaves the pod Pending with condition PodScheduled False, reason
// Unschedulable, plus a Warning event FailedScheduling.
//
// A pod whose deletion has begun is deleted at once, as kubelet would after
// its containers stop, unless it has [AnnotationStuckTerminating] (any
// value): then it stays Terminating, Running, until a delete with a grace
// period of 0 (kubectl delete --force) removes it, as with a node that
// never answers.
const (
	// AnnotationPrefix starts every annotation this package reads or writes.
	AnnotationPrefix = "test.kubeworker.io/"

	// AnnotationExitCode sets the containers' exit code.
	AnnotationExitCode = AnnotationPrefix + "exit-code"
	// AnnotationReason sets the containers' terminated reason.
	AnnotationReason = AnnotationPrefix + "reason"
	// AnnotationDelay sets how long a pod runs before it finishes.
	AnnotationDelay = AnnotationPrefix + "delay"
	// AnnotationJitter sets the latest time a pod finishes.
	AnnotationJitter = AnnotationPrefix + "jitter"
	// AnnotationEvict makes the pod evicted, with the value as message.
	AnnotationEvict = AnnotationPrefix + "evict"
	// AnnotationImagePull makes image pulls fail with the value as reason.
	AnnotationImagePull = AnnotationPrefix + "image-pull"
	// AnnotationStuckTerminating keeps a pod Terminating once its deletion
	// begins, as with a kubelet that never confirms it.
	AnnotationStuckTerminating = AnnotationPrefix + "stuck-terminating"
	// AnnotationFailAttempts makes the first N pods of a Job fail.
	AnnotationFailAttempts = AnnotationPrefix + "fail-attempts"
	// AnnotationLog sets the lines a container's log starts with.
	AnnotationLog = AnnotationPrefix + "log"
	// AnnotationLogPartial makes a container's log end without a newline.
	AnnotationLogPartial = AnnotationPrefix + "log-partial"

	// AnnotationLogsReady is set by the harness, never by a test: the pod's
	// logs are served, so kwok may start it.
	AnnotationLogsReady = AnnotationPrefix + "logs-ready"
)

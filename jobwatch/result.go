package jobwatch

import (
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Result is what [Watcher.Wait] learned about a run. Reason and Message
// are raw text from the cluster, never rewritten, so nothing the API
// server said is lost behind the Outcome.
type Result struct {
	// Outcome is the typed ending.
	Outcome Outcome
	// ExitCode is the run container's exit code in the newest pod, or -1
	// when it has none (never started, deleted while running, no pod).
	// Check Outcome, not ExitCode, to tell success from failure.
	ExitCode int
	// NoExitCode says, in jobwatch's words, why ExitCode is -1 ("the Job
	// has no pod", `container "main" is waiting: ImagePullBackOff`); it
	// is empty when ExitCode is known.
	NoExitCode string
	// Reason and Message are the raw reason and message of the cause the
	// Outcome names: the container's terminated or waiting state (Error,
	// OOMKilled, ErrImagePull), the pod's (Evicted), the scheduler's
	// condition (Unschedulable) or, for Job-level outcomes, the Job's
	// condition (DeadlineExceeded).
	Reason, Message string
	// JobReason and JobMessage are the raw reason and message of the Job's
	// Complete or Failed condition (for example BackoffLimitExceeded), or
	// empty while it has none.
	JobReason, JobMessage string
	// FromPod reports that the Job's newest pod decided the Outcome before
	// the Job controller recorded the Job's end, because the Job could end
	// no other way (see Classify); JobReason and JobMessage are then
	// empty.
	FromPod bool
	// Pod is the newest pod of the Job, and Container the run container
	// in it; empty when there is no pod.
	Pod, Container string
	// Diagnosis explains a pod that did not start: set with the Outcomes
	// ImagePullError, CrashLoop, Unschedulable, NeverStarted,
	// CannotCreatePod and NotAdmitted; nil otherwise.
	Diagnosis *Diagnosis
	// StartedAt is the Job's start time, or its first pod's while the Job
	// controller has not written it yet. FinishedAt is when it finished:
	// its completion or Failed time, else the run container's finish,
	// else when the Watcher saw the end (Deleted, TimedOut, pod start
	// timeout). Either is zero when unknown.
	StartedAt, FinishedAt time.Time
	// LastLogTime is the timestamp of the last log line written to
	// WaitOptions.Logs, zero if none. Pass it as WaitOptions.LogsSince to
	// continue the log later without repeating a line.
	LastLogTime time.Time
	// LogTail is the end of the run container's log in Pod: its last
	// lines (WaitOptions.LogTailLines, default DefaultLogTailLines),
	// oldest first, without timestamps or line ends, each cut to
	// LogTailLineBytes. It is read whether or not WaitOptions.Logs is
	// set, as soon as Wait sees the end, so that it outlives the pod:
	// from the stream that feeds Logs, else with one plain read of the
	// last lines. It is nil when the tail is off, when Pod's run
	// container never started, when the log is empty, or when it could
	// not be read (the pod deleted first, a missing right, the Watcher
	// closed); that never changes the rest of the Result. With
	// WaitOptions.LogsSince and a Logs writer, it holds the lines after
	// LogsSince, read again from the start of the log only if there are
	// fewer than LogTailLines of them.
	LogTail []string
	// Queue is what Kueue did with the run: its queues, waits,
	// admissions, preemptions and evictions (see Queueing). It is nil for
	// a Job without Kueue's queue-name label.
	Queue *Queueing
}

// Diagnosis says why a pod did not start: within the pod start timeout,
// or at all (CannotCreatePod), or before its Job failed, or because Kueue
// did not admit the Job (NotAdmitted: from its Workload's conditions).
// It is built from the pod's status, which is certain, and from the
// Job's and the pod's events, which say more; Cause and the fields it
// names are typed, and Reason and Message keep the raw words.
type Diagnosis struct {
	// Cause is the typed reason; see each Cause for the fields that
	// detail it.
	Cause Cause
	// Reason is the raw reason found: a waiting reason (ErrImagePull,
	// CrashLoopBackOff, ContainerCreating), a condition reason
	// (Unschedulable; Kueue's Pending or Inadmissible), an event reason
	// (FailedScheduling, FailedCreate), or empty when nothing was found.
	Reason string
	// Message is the message that goes with Reason.
	Message string
	// Container names the container whose state gave Reason, if one did.
	Container string
	// Image is the image that cannot be pulled (CauseImagePull), read
	// from the pod's spec; empty if the spec could not be read.
	Image string
	// Scheduling breaks down an Unschedulable diagnosis; nil otherwise.
	Scheduling *SchedulingFailure
	// Quota names the ResourceQuota that refused the pod (CauseQuota).
	Quota string
	// ServiceAccount names the service account the pod needs and the
	// namespace lacks (CauseServiceAccount).
	ServiceAccount string
	// LocalQueue names the Kueue LocalQueue the Job waited in, for the
	// Outcome NotAdmitted (its Causes are CauseQueueMissing,
	// CauseQueueInactive, CauseQuotaWait and CauseNoWorkload).
	LocalQueue string
	// Events are the Job's and the pod's events, oldest first. Listing
	// them can fail (RBAC, a dropped connection); the Diagnosis is then
	// made from the status alone and Events is empty.
	Events []corev1.Event
}

// Cause is the typed reason of a [Diagnosis].
type Cause int

const (
	// CauseUnknown: nothing more specific was found (a pod still
	// ContainerCreating, a volume that does not mount, no events).
	CauseUnknown Cause = iota
	// CauseInsufficientResources: the nodes that would otherwise take the
	// pod lack a resource it requests; Scheduling.Insufficient says which
	// and on how many nodes.
	CauseInsufficientResources
	// CauseUntoleratedTaint: the nodes carry taints the pod does not
	// tolerate; Scheduling.Taints lists them when they can be known.
	CauseUntoleratedTaint
	// CauseNodeAffinity: no node matches the pod's node selector or node
	// affinity.
	CauseNodeAffinity
	// CauseUnboundClaim: a PersistentVolumeClaim of the pod is unbound or
	// missing; Scheduling.Claims says which, as far as it is known.
	CauseUnboundClaim
	// CauseUnschedulable: the scheduler found no node for another reason
	// (pod affinity, ports, topology spread, cordoned nodes); see
	// Scheduling.
	CauseUnschedulable
	// CauseQuota: a ResourceQuota refuses the pod (the Job's FailedCreate
	// event); Quota names it.
	CauseQuota
	// CauseServiceAccount: the pod's service account does not exist (the
	// Job's FailedCreate event); ServiceAccount names it.
	CauseServiceAccount
	// CausePodSecurity: the namespace's Pod Security admission refuses
	// the pod (the Job's FailedCreate event).
	CausePodSecurity
	// CauseAdmission: the API server refuses to create the pod for
	// another reason: an admission webhook or policy, a LimitRange, an
	// invalid pod (the Job's FailedCreate event).
	CauseAdmission
	// CauseImagePull: an image cannot be pulled; Container and Image
	// name it.
	CauseImagePull
	// CauseCrashLoop: a container keeps crashing (CrashLoopBackOff);
	// Container names it.
	CauseCrashLoop
	// CauseQueueMissing: Kueue says the Job's LocalQueue, or the
	// ClusterQueue it points to, does not exist (QuotaReserved False,
	// reason Inadmissible, "LocalQueue q doesn't exist"); LocalQueue
	// names it. A missing LocalQueue ends the Wait at once.
	CauseQueueMissing
	// CauseQueueInactive: Kueue says the LocalQueue or its ClusterQueue
	// is stopped or inactive (reason Inadmissible) at the queue timeout.
	CauseQueueInactive
	// CauseQuotaWait: the Job still waited for quota in its ClusterQueue
	// at the queue timeout (QuotaReserved False, reason Pending; Message
	// is Kueue's, such as "couldn't assign flavors to pod set main:
	// insufficient unused quota for cpu in flavor default, 1 more
	// needed").
	CauseQuotaWait
	// CauseNoWorkload: no Kueue Workload of the Job was seen by the
	// queue timeout, while the Job stayed suspended: Kueue is not
	// installed (its Workload API is not served), does not manage the
	// Job, or is not followed (no dynamic client, see Options.Dynamic).
	// Message says which, as far as Wait can tell.
	CauseNoWorkload
)

var causeNames = [...]string{
	CauseUnknown:               "Unknown",
	CauseInsufficientResources: "InsufficientResources",
	CauseUntoleratedTaint:      "UntoleratedTaint",
	CauseNodeAffinity:          "NodeAffinity",
	CauseUnboundClaim:          "UnboundClaim",
	CauseUnschedulable:         "Unschedulable",
	CauseQuota:                 "Quota",
	CauseServiceAccount:        "ServiceAccount",
	CausePodSecurity:           "PodSecurity",
	CauseAdmission:             "Admission",
	CauseImagePull:             "ImagePull",
	CauseCrashLoop:             "CrashLoop",
	CauseQueueMissing:          "QueueMissing",
	CauseQueueInactive:         "QueueInactive",
	CauseQuotaWait:             "QuotaWait",
	CauseNoWorkload:            "NoWorkload",
}

// String returns the Cause's name without its prefix ("Quota"), or
// "Cause(N)" for a value out of range.
func (c Cause) String() string {
	if c >= 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return "Cause(" + strconv.Itoa(int(c)) + ")"
}

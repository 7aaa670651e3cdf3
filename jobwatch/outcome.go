package jobwatch

import "strconv"

// Outcome is how a run ended. Every ending of a Job that [Watcher.Wait]
// observes maps to exactly one Outcome; when several apply, the most
// specific cause wins (see [Classify] for the order). [Outcome.Fault]
// says whether the run, the infrastructure or the caller is to blame.
type Outcome int

const (
	// Unknown is the zero value. Wait returns it only together with an
	// error (the context ended, the Watcher closed, a bad JobRef).
	Unknown Outcome = iota
	// Succeeded: the Job is Complete (or SuccessCriteriaMet, or has a
	// completion time).
	Succeeded
	// Failed: the Job failed and its last pod's run container exited
	// non-zero with no more specific cause; ExitCode holds the code. With
	// backoffLimit 0 (one attempt) a failing run is Failed, not
	// BackoffLimitExceeded.
	Failed
	// BackoffLimitExceeded: the Job retried its pod (backoffLimit ≥ 1)
	// and ran out of retries; ExitCode is the last attempt's.
	BackoffLimitExceeded
	// DeadlineExceeded: the Job ran past its activeDeadlineSeconds, or
	// past the maximum execution time of its Kueue Workload (Reason
	// MaximumExecutionTimeExceeded, or Kueue's Evicted reason for it).
	DeadlineExceeded
	// Evicted: the last pod was evicted or otherwise disrupted by the
	// cluster (condition DisruptionTarget, or pod reason Evicted).
	Evicted
	// OOMKilled: the run container was killed for using too much memory.
	OOMKilled
	// ImagePullError: a container's image could not be pulled
	// (ErrImagePull, ImagePullBackOff, InvalidImageName, ...).
	ImagePullError
	// Unschedulable: the scheduler found no node for the pod.
	Unschedulable
	// NeverStarted: the pod did not leave Pending within the pod start
	// timeout and nothing more specific was found (a volume that does not
	// mount, a pod still ContainerCreating, no pod and no event saying
	// why). Diagnosis holds the events.
	NeverStarted
	// CrashLoop: a container keeps crashing and the kubelet backs off
	// restarting it (CrashLoopBackOff).
	CrashLoop
	// Deleted: the Job was deleted (or began deletion) before it
	// finished.
	Deleted
	// TimedOut: WaitOptions.Deadline passed before the Job finished. The
	// Job is left running.
	TimedOut
	// CannotCreatePod: the Job controller cannot create the Job's pod: the
	// API server refuses it (a ResourceQuota used up, a missing service
	// account, Pod Security, an admission webhook, an invalid pod). Wait
	// reports it as soon as the Job's FailedCreate event says so, without
	// waiting for the pod start timeout; Diagnosis holds the event and its
	// typed Cause. The Job is left as it is: the controller keeps trying.
	CannotCreatePod
	// PodVanished: the Job failed after its pods disappeared (deleted from
	// outside, or garbage-collected with a lost node) before any of them
	// reported how it ended. Wait never guesses an exit code or a success
	// for a pod it did not see end.
	PodVanished
	// NotAdmitted: Kueue did not admit the Job (one with Kueue's
	// queue-name label) within WaitOptions.QueueTimeout, counted from the
	// start of Wait or from its latest eviction; or at once, Kueue says
	// its LocalQueue does not exist. Diagnosis names the LocalQueue and
	// holds Kueue's last word on the Workload (the QuotaReserved
	// condition's reason and message). The Job is left queued.
	NotAdmitted
	// Deactivated: Kueue deactivated the Job's Workload (spec.active
	// false): it ran out of requeues (RequeuingLimitExceeded), an
	// admission check rejected it, or someone deactivated it. Reason and
	// Message are Kueue's (the Evicted condition's, such as
	// DeactivatedDueToRequeuingLimitExceeded). Kueue keeps the Job
	// suspended. A Workload deactivated for running past its maximum
	// execution time ends DeadlineExceeded instead.
	Deactivated
	// Cancelled: the Job was deleted (or began deletion) before it
	// finished, and carries [AnnotationCancelled]: someone stopped the
	// run on purpose (worker.Worker.Cancel marks the Job, then deletes
	// it). Reason is ReasonCancelled and Message the annotation's value,
	// the reason the caller gave (DefaultCancelMessage when empty). A Job
	// deleted without the annotation is Deleted; one that finished before
	// it was marked keeps its Outcome.
	Cancelled
)

var outcomeNames = [...]string{
	Unknown:              "Unknown",
	Succeeded:            "Succeeded",
	Failed:               "Failed",
	BackoffLimitExceeded: "BackoffLimitExceeded",
	DeadlineExceeded:     "DeadlineExceeded",
	Evicted:              "Evicted",
	OOMKilled:            "OOMKilled",
	ImagePullError:       "ImagePullError",
	Unschedulable:        "Unschedulable",
	NeverStarted:         "NeverStarted",
	CrashLoop:            "CrashLoop",
	Deleted:              "Deleted",
	TimedOut:             "TimedOut",
	CannotCreatePod:      "CannotCreatePod",
	PodVanished:          "PodVanished",
	NotAdmitted:          "NotAdmitted",
	Deactivated:          "Deactivated",
	Cancelled:            "Cancelled",
}

// String returns the Outcome's name, as spelled in this package
// ("OOMKilled"), or "Outcome(N)" for a value out of range.
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Fault says whose fault an ending is, so that a scheduler can decide
// whether a retry of the same run may pass. It is a property of the
// Outcome (see [Outcome.Fault]): each Outcome names one cause, and each
// cause has one culprit.
type Fault int

const (
	// FaultUnknown: the run has not ended as far as Wait knows (Unknown,
	// TimedOut), so nothing can be blamed yet.
	FaultUnknown Fault = iota
	// FaultNone: the run succeeded.
	FaultNone
	// FaultRun: the run itself failed: its container exited non-zero,
	// crash-looped or was OOM-killed, or its Job ran out of retries or
	// past its activeDeadlineSeconds. The same run will likely fail the
	// same way.
	FaultRun
	// FaultInfrastructure: the cluster or its configuration kept the run
	// from starting or finishing: eviction, preemption or another
	// disruption, a node lost, an image that cannot be pulled, no node
	// that fits, a pod that cannot be created, a pod or Job deleted from
	// outside, a queue that does not admit the run or deactivates it. The
	// run's code is not to blame; a retry may pass once the cause is gone.
	FaultInfrastructure
	// FaultCaller: whoever runs the work stopped it on purpose
	// (Cancelled). Neither the run nor the cluster failed; a retry is the
	// caller's decision, never an automatic one.
	FaultCaller
)

var faultNames = [...]string{
	FaultUnknown:        "Unknown",
	FaultNone:           "None",
	FaultRun:            "Run",
	FaultInfrastructure: "Infrastructure",
	FaultCaller:         "Caller",
}

// String returns "Run", "Infrastructure", "Caller", "None" or "Unknown",
// or "Fault(N)" for a value out of range.
func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "Fault(" + strconv.Itoa(int(f)) + ")"
}

// Fault says whether the Outcome is the run's own failure, the
// infrastructure's, or the caller's decision:
//
//	Succeeded                                    FaultNone
//	Failed, BackoffLimitExceeded, DeadlineExceeded,
//	OOMKilled, CrashLoop                         FaultRun
//	Evicted, ImagePullError, Unschedulable, NeverStarted,
//	CannotCreatePod, Deleted, PodVanished,
//	NotAdmitted, Deactivated                     FaultInfrastructure
//	Cancelled                                    FaultCaller
//	Unknown, TimedOut                            FaultUnknown
//
// Attribution belongs to the Outcome, not to the Result, because the
// Outcome already names the most specific cause Wait found (an eviction
// wins over the BackoffLimitExceeded it led to): a scheduler that switches
// on Outcomes and one that retries on FaultInfrastructure then always
// agree. An ImagePullError or a CannotCreatePod may come from the run's
// own settings (a misspelt image, a missing service account); they are
// charged to the infrastructure because no code of the run ran. A Job
// deleted from outside is the infrastructure's (Deleted), unless it was
// cancelled (Cancelled, marked with AnnotationCancelled first): that is
// the caller's.
func (o Outcome) Fault() Fault {
	switch o {
	case Succeeded:
		return FaultNone
	case Failed, BackoffLimitExceeded, DeadlineExceeded, OOMKilled, CrashLoop:
		return FaultRun
	case Evicted, ImagePullError, Unschedulable, NeverStarted, CannotCreatePod, Deleted, PodVanished, NotAdmitted, Deactivated:
		return FaultInfrastructure
	case Cancelled:
		return FaultCaller
	}
	return FaultUnknown
}

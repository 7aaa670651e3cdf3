package jobwatch

import "strconv"

// Outcome is how a run ended. Every ending of a Job that [Watcher.Wait]
// observes maps to exactly one Outcome; when several apply, the most
// specific cause wins (see [Classify] for the order).
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
	// DeadlineExceeded: the Job ran past its activeDeadlineSeconds.
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
	// timeout and nothing more specific was found (no pod created, a
	// volume that does not mount, ...). Diagnosis holds the events.
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
}

// String returns the Outcome's name, as spelled in this package
// ("OOMKilled"), or "Outcome(N)" for a value out of range.
func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

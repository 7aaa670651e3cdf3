package jobwatch

import (
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
	// Pod is the newest pod of the Job, and Container the run container
	// in it; empty when there is no pod.
	Pod, Container string
	// Diagnosis explains a pod that did not start in time; nil otherwise.
	Diagnosis *Diagnosis
	// StartedAt is the Job's start time. FinishedAt is when it finished:
	// its completion or Failed time, else the run container's finish,
	// else when the Watcher saw the end (Deleted, TimedOut, pod start
	// timeout). Either is zero when unknown.
	StartedAt, FinishedAt time.Time
	// LastLogTime is the timestamp of the last log line written to
	// WaitOptions.Logs, zero if none. Pass it as WaitOptions.LogsSince to
	// continue the log later without repeating a line.
	LastLogTime time.Time
}

// Diagnosis says why a pod did not leave Pending within the pod start
// timeout. It is built from the pod's status, which is certain, and
// from the Job's and the pod's events, which say more.
type Diagnosis struct {
	// Reason is the raw reason found: a waiting reason (ErrImagePull,
	// CrashLoopBackOff, ContainerCreating), a condition reason
	// (Unschedulable), an event reason (FailedScheduling, FailedCreate),
	// or empty when nothing was found.
	Reason string
	// Message is the message that goes with Reason.
	Message string
	// Container names the container whose state gave Reason, if one did.
	Container string
	// Scheduling breaks down an Unschedulable diagnosis; nil otherwise.
	Scheduling *SchedulingFailure
	// Events are the Job's and the pod's events, oldest first. Listing
	// them can fail (RBAC, a dropped connection); the Diagnosis is then
	// made from the status alone and Events is empty.
	Events []corev1.Event
}

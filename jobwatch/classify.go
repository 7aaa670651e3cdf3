package jobwatch

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// Classify decides a run's Result from a Job and its pods, as
// [Watcher.Wait] does each time either changes. finished reports whether
// the Job has ended; while it has not, the Result describes the run so
// far with Outcome Unknown. pods must be the Job's own pods, in any
// order; container names the run container ("" means each pod's first
// container). Classify is pure: it reads no clock and no cluster.
//
// The Job has ended when it has a Complete or SuccessCriteriaMet
// condition or a completion time (succeeded); a Failed or FailureTarget
// condition, or more failed pods than its backoffLimit (failed); or a
// deletionTimestamp (Deleted, or Cancelled when the Job carries
// AnnotationCancelled: Reason ReasonCancelled, Message the annotation's
// value).
//
// The Job's own conditions decide, as soon as the Job controller does:
// SuccessCriteriaMet and FailureTarget (Kubernetes 1.31 and later) come
// before Complete and Failed, while the controller still terminates
// pods, and count the same.
//
// Before them, the newest pod decides when it leaves the Job only one
// way to end, which saves the second or more the Job controller takes to
// say so (it batches pod updates for a second). That is a Job of one
// completion and parallelism one, with no active deadline, success
// policy, per-index backoff limit or outside manager (spec.managedBy),
// not suspended, neither it nor its newest pod being deleted, and whose
// other pods have all finished or are being deleted: it succeeds once
// its newest pod has Succeeded, and fails once that pod has Failed if
// its backoffLimit is 0 and it has no pod failure policy. Result.FromPod
// says so, and JobReason is then empty.
//
// The newest pod (by creation time, then name) gives Pod, Container and
// ExitCode. For a failed Job the most specific cause wins, checked in
// this order on the newest pod, then on the Job:
//
//  1. Evicted: pod reason Evicted or a DisruptionTarget condition.
//  2. OOMKilled: the run container terminated with reason OOMKilled.
//  3. ImagePullError: a container waits with an image-pull reason.
//  4. CrashLoop: a container waits with CrashLoopBackOff.
//  5. Unschedulable: the pod is Pending, PodScheduled False, reason
//     Unschedulable.
//  6. DeadlineExceeded: the Job's reason is DeadlineExceeded.
//  7. PodVanished: every pod of the Job was deleted (a deletionTimestamp,
//     or gone) before it reached a terminal phase, and the Job's reason
//     is not one for which the Job controller deletes pods itself
//     (PodFailurePolicy, FailedIndexes, MaxFailedIndexesExceeded).
//  8. BackoffLimitExceeded: the Job's reason is BackoffLimitExceeded and
//     its backoffLimit is at least 1, so it did retry.
//  9. Failed, with the run container's exit code (-1 if none).
//
// So a Job that failed with BackoffLimitExceeded because its pod was
// OOM-killed gives OOMKilled, ExitCode 137, Reason OOMKilled and
// JobReason BackoffLimitExceeded. A Job that finished before it was
// deleted keeps its outcome, cancelled or not; only an unfinished one is
// Deleted (or Cancelled). The exit code is never guessed: a pod that
// vanished has none (-1).
//
// Native sidecars (init containers with restartPolicy Always) never give
// the exit code: the run container is one of the pod's containers, found
// by name, so neither a native sidecar nor a sidecar listed first in
// containers changes the Result when container names the run container.
func Classify(job *batchv1.Job, pods []*corev1.Pod, container string) (r Result, finished bool) {
	r = Result{ExitCode: -1}
	sorted := slices.Clone(pods)
	sortPods(sorted)
	pod := newestPod(sorted)
	var term *corev1.ContainerStateTerminated
	if pod == nil {
		r.NoExitCode = "the Job has no pod"
	} else {
		r.Pod = pod.Name
		r.Container = runContainer(pod, container)
		s := containerStatus(pod, r.Container)
		switch {
		case s == nil:
			r.NoExitCode = fmt.Sprintf("pod %s has no status for container %q", pod.Name, r.Container)
		case s.State.Terminated != nil:
			term = s.State.Terminated
			r.ExitCode = int(term.ExitCode)
			r.FinishedAt = term.FinishedAt.Time
		case s.State.Waiting != nil:
			r.NoExitCode = fmt.Sprintf("container %q is waiting: %s", r.Container, s.State.Waiting.Reason)
		default:
			r.NoExitCode = fmt.Sprintf("container %q has not terminated", r.Container)
		}
	}
	if job == nil {
		return r, false
	}
	if job.Status.StartTime != nil {
		r.StartedAt = job.Status.StartTime.Time
	} else {
		// The Job controller writes startTime in a sync that may come
		// after the pod has already decided the run (FromPod).
		r.StartedAt = firstPodStart(sorted)
	}
	end := jobEnd(job)
	if !end.done() {
		end, r.FromPod = podEnd(job, sorted)
	}
	r.JobReason, r.JobMessage = end.reason, end.message
	if !end.at.IsZero() {
		r.FinishedAt = end.at
	}
	switch {
	case end.succeeded:
		r.Outcome = Succeeded
		if term == nil {
			// The newest pod did not end (an extra pod the Job
			// controller made, after a restart say, then stopped once
			// another succeeded): the pod that succeeded says how.
			term = succeededPod(&r, sorted, container)
		}
		if term != nil {
			r.Reason, r.Message = term.Reason, term.Message
		}
		return r, true
	case end.failed:
		failedCause(&r, job, sorted, term)
		return r, true
	case job.DeletionTimestamp != nil:
		r.Outcome = Deleted
		if pod != nil && term == nil {
			r.NoExitCode = fmt.Sprintf("the Job was deleted before container %q of pod %s was seen to end", r.Container, pod.Name)
		}
		if reason, ok := job.Annotations[AnnotationCancelled]; ok {
			r.Outcome, r.Reason, r.Message = Cancelled, ReasonCancelled, cmp.Or(reason, DefaultCancelMessage)
		}
		if r.FinishedAt.IsZero() || term == nil {
			r.FinishedAt = job.DeletionTimestamp.Time
		}
		return r, true
	}
	return r, false
}

// succeededPod fills r's pod and exit code from the newest of sorted
// whose run container exited 0, and returns its terminated state; nil if
// none did.
func succeededPod(r *Result, sorted []*corev1.Pod, container string) *corev1.ContainerStateTerminated {
	for _, p := range slices.Backward(sorted) {
		name := runContainer(p, container)
		if s := containerStatus(p, name); s != nil && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
			r.Pod, r.Container, r.ExitCode, r.NoExitCode = p.Name, name, 0, ""
			r.FinishedAt = s.State.Terminated.FinishedAt.Time
			return s.State.Terminated
		}
	}
	return nil
}

// AnnotationCancelled marks a Job whose run was cancelled on purpose; its
// value is the reason given, free text, possibly empty. A Job that
// carries it and is deleted before it finished is [Cancelled], not
// Deleted. worker.Worker.Cancel sets it, with a merge patch, before it
// deletes the Job, so every reader of the deletion also sees the mark;
// the Watcher's streams keep it on the Jobs they cache, so a Job that
// vanishes is judged by its last state, mark included.
const AnnotationCancelled = "kubeworker.io/cancelled"

// ReasonCancelled is Result.Reason of a Cancelled run; Result.Message is
// the reason the caller gave.
const ReasonCancelled = "Cancelled"

// DefaultCancelMessage is Result.Message of a Cancelled run whose
// AnnotationCancelled is empty.
const DefaultCancelMessage = "cancelled; no reason given"

// jobEnding is what a Job's status says about its end.
type jobEnding struct {
	succeeded, failed bool
	reason, message   string
	at                time.Time
}

// done reports whether the Job has ended, either way.
func (e jobEnding) done() bool { return e.succeeded || e.failed }

func jobEnd(job *batchv1.Job) jobEnding {
	var e jobEnding
	// The final conditions win over the interim ones, which the Job
	// controller sets first while pods still terminate.
	for _, want := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed, batchv1.JobSuccessCriteriaMet, batchv1.JobFailureTarget} {
		for _, c := range job.Status.Conditions {
			if c.Type != want || c.Status != corev1.ConditionTrue {
				continue
			}
			e.succeeded = want == batchv1.JobComplete || want == batchv1.JobSuccessCriteriaMet
			e.failed = !e.succeeded
			e.reason, e.message, e.at = c.Reason, c.Message, c.LastTransitionTime.Time
			if e.succeeded && job.Status.CompletionTime != nil {
				e.at = job.Status.CompletionTime.Time
			}
			return e
		}
	}
	if job.Status.CompletionTime != nil {
		return jobEnding{succeeded: true, at: job.Status.CompletionTime.Time}
	}
	if limit := job.Spec.BackoffLimit; limit != nil && job.Status.Failed > *limit {
		// The Job controller will say so too; no need to wait for it.
		return jobEnding{failed: true, reason: batchv1.JobReasonBackoffLimitExceeded}
	}
	return e
}

// podEnd returns the end the Job's newest pod implies, when the Job
// controller can end the Job no other way: see Classify. It reports
// whether it found one.
func podEnd(job *batchv1.Job, pods []*corev1.Pod) (jobEnding, bool) {
	sp := &job.Spec
	pod := newestPod(pods)
	if pod == nil || pod.DeletionTimestamp != nil || job.DeletionTimestamp != nil || suspended(job) ||
		ptr.Deref(sp.Completions, 1) != 1 || ptr.Deref(sp.Parallelism, 1) != 1 ||
		sp.ActiveDeadlineSeconds != nil || sp.SuccessPolicy != nil || sp.BackoffLimitPerIndex != nil ||
		ptr.Deref(sp.ManagedBy, batchv1.JobControllerName) != batchv1.JobControllerName {
		return jobEnding{}, false
	}
	for _, p := range pods {
		if p != pod && !podFinished(p) && p.DeletionTimestamp == nil {
			return jobEnding{}, false // another pod still runs
		}
	}
	switch {
	case pod.Status.Phase == corev1.PodSucceeded:
		return jobEnding{succeeded: true}, true
	case pod.Status.Phase == corev1.PodFailed && sp.PodFailurePolicy == nil && ptr.Deref(sp.BackoffLimit, 6) == 0:
		return jobEnding{failed: true}, true
	}
	return jobEnding{}, false
}

// failedCause sets the Outcome, Reason and Message of a failed Job from
// the most specific cause (see Classify).
func failedCause(r *Result, job *batchv1.Job, pods []*corev1.Pod, term *corev1.ContainerStateTerminated) {
	pod := newestPod(pods)
	if pod != nil {
		if reason, message, ok := evicted(pod); ok {
			r.Outcome, r.Reason, r.Message = Evicted, reason, message
			return
		}
		if term != nil && term.Reason == "OOMKilled" {
			r.Outcome, r.Reason, r.Message = OOMKilled, term.Reason, term.Message
			return
		}
		if s, ok := waitingWith(pod, func(reason string) bool { return imagePullReasons[reason] }); ok {
			r.Outcome, r.Reason, r.Message = ImagePullError, s.State.Waiting.Reason, s.State.Waiting.Message
			return
		}
		if s, ok := waitingWith(pod, func(reason string) bool { return reason == crashLoopReason }); ok {
			r.Outcome, r.Reason, r.Message = CrashLoop, s.State.Waiting.Reason, s.State.Waiting.Message
			if last := s.LastTerminationState.Terminated; last != nil && s.Name == r.Container && r.ExitCode == -1 {
				r.ExitCode, r.NoExitCode = int(last.ExitCode), ""
			}
			return
		}
		if c := unschedulable(pod); c != nil && !podStarted(pod) {
			r.Outcome, r.Reason, r.Message = Unschedulable, c.Reason, c.Message
			return
		}
	}
	switch {
	case r.JobReason == batchv1.JobReasonDeadlineExceeded:
		r.Outcome, r.Reason, r.Message = DeadlineExceeded, r.JobReason, r.JobMessage
	case !jobDeletesPods[r.JobReason] && allVanished(pods, r.Container):
		r.Outcome, r.Reason, r.Message = PodVanished, r.JobReason, r.JobMessage
		r.NoExitCode = fmt.Sprintf("pod %s was deleted before it reported how it ended", pod.Name)
	case r.JobReason == batchv1.JobReasonBackoffLimitExceeded && job.Spec.BackoffLimit != nil && *job.Spec.BackoffLimit > 0:
		r.Outcome, r.Reason, r.Message = BackoffLimitExceeded, r.JobReason, r.JobMessage
	default:
		r.Outcome, r.Reason, r.Message = Failed, r.JobReason, r.JobMessage
		if term != nil {
			r.Reason, r.Message = term.Reason, term.Message
		}
	}
}

// evicted reports whether the cluster disrupted pod, with the raw reason
// and message.
func evicted(pod *corev1.Pod) (reason, message string, ok bool) {
	if pod.Status.Reason == "Evicted" {
		return pod.Status.Reason, pod.Status.Message, true
	}
	if c := podCondition(pod, corev1.DisruptionTarget); c != nil && c.Status == corev1.ConditionTrue {
		return cmp.Or(pod.Status.Reason, c.Reason), cmp.Or(pod.Status.Message, c.Message), true
	}
	return "", "", false
}

// jobDeletesPods are the reasons of a failed Job for which the Job
// controller deletes the Job's remaining pods itself.
var jobDeletesPods = map[string]bool{
	batchv1.JobReasonPodFailurePolicy:         true,
	batchv1.JobReasonFailedIndexes:            true,
	batchv1.JobReasonMaxFailedIndexesExceeded: true,
}

// allVanished reports whether pods is not empty and every pod in it was
// deleted before it ended: marked for deletion (or gone, which Wait marks
// the same way) while neither Succeeded nor Failed, its run container not
// terminated.
func allVanished(pods []*corev1.Pod, container string) bool {
	if len(pods) == 0 {
		return false
	}
	for _, p := range pods {
		if p.DeletionTimestamp == nil || podFinished(p) {
			return false
		}
		if s := containerStatus(p, runContainer(p, container)); s != nil && s.State.Terminated != nil {
			return false
		}
	}
	return true
}

// firstPodStart returns the earliest status.startTime among pods, zero if
// none has one.
func firstPodStart(pods []*corev1.Pod) time.Time {
	var first time.Time
	for _, p := range pods {
		if st := p.Status.StartTime; st != nil && (first.IsZero() || st.Time.Before(first)) {
			first = st.Time
		}
	}
	return first
}

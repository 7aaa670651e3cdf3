package jobwatch

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Event reports that a pod of a run reached a new phase, or the same
// phase for a new reason (Pending for Unschedulable, then for
// ErrImagePull); or, with Pod and Phase empty, that the Job itself was
// queued (ReasonQueued) or resumed (ReasonResumed), or took a new place
// in its Kueue queue (ReasonQueuePosition, with Position); or, with
// Workload set, what Kueue did with the Job (ReasonWaitingForQuota,
// ReasonInadmissible, ReasonAdmitted, ReasonPreempted, ReasonEvicted,
// ReasonRequeued, ReasonDeactivated).
type Event struct {
	// ID identifies the event by what happened, not by when it was seen:
	// it is a hash of the pod's UID, the phase and the reason (for an
	// event of the Job or of Kueue, of the Job's or the Workload's UID,
	// the reason and the condition's transition time). A replay
	// (after a reconnect, a relist, or a later Wait on the same Job) has
	// the same ID, so a sink that stores events can drop repeats. A
	// ReasonQueuePosition is a reading, never replayed: its ID hashes the
	// Job's UID, the position and when it was read.
	ID string
	// PrevID is the ID of the event this Wait reported before this one,
	// or empty for its first. It links the events of one run into a chain.
	PrevID string
	// Job and Pod name the Job and the pod; Pod is empty for an event
	// of the Job itself.
	Job, Pod string
	// Phase is the pod's phase, or empty for an event of the Job itself.
	Phase corev1.PodPhase
	// Reason and Message are raw: the pod's reason (Evicted), else for
	// Pending the scheduler's condition (Unschedulable) or a container's
	// waiting reason (ErrImagePull, ContainerCreating), for Running the run
	// container's waiting reason if any (CrashLoopBackOff), and for
	// Succeeded or Failed its terminated reason (Completed, Error,
	// OOMKilled). For an event of the Job itself, Reason is ReasonQueued
	// or ReasonResumed and Message is the Job controller's. For an event
	// of Kueue's, Reason is one of the Reason constants of Kueue and
	// Message is Kueue's condition message.
	Reason, Message string
	// Workload names the Kueue Workload of an event of Kueue's; empty
	// for the others.
	Workload string
	// KueueReason is the raw reason of the Kueue condition behind an
	// event of Kueue's: for ReasonPreempted the Preempted condition's
	// (InClusterQueue, InCohortReclamation, InCohortFairSharing,
	// InCohortReclaimWhileBorrowing), for ReasonEvicted and
	// ReasonDeactivated the Evicted condition's (PodsReadyTimeout,
	// AdmissionCheck, ClusterQueueStopped, LocalQueueStopped,
	// DeactivatedDueToRequeuingLimitExceeded, ...), for
	// ReasonWaitingForQuota and ReasonInadmissible the QuotaReserved
	// condition's (Pending, Inadmissible), for ReasonRequeued the
	// Requeued condition's (Preempted, BackoffFinished, ...) and for
	// ReasonAdmitted the Admitted condition's.
	KueueReason string
	// ClusterQueue names the ClusterQueue that admitted the Job, for
	// ReasonAdmitted.
	ClusterQueue string
	// Position is the run's new place in its queues, for
	// ReasonQueuePosition; nil for the others.
	Position *QueuePosition
	// Time is when it happened as the cluster recorded it (creation,
	// start, finish, or the condition's transition), else when the
	// Watcher saw it.
	Time time.Time
}

// Reasons of the events of the Job itself: ReasonQueued and
// ReasonResumed read from its Suspended condition, which the Job
// controller sets once it has seen spec.suspend; ReasonQueuePosition
// from Kueue's visibility API.
const (
	// ReasonQueued: the Job is suspended (spec.suspend true), as
	// queueing systems such as Kueue hold Jobs until they may run. No pod
	// runs, and the pod start timeout does not run either.
	ReasonQueued = "Queued"
	// ReasonResumed: the Job was resumed after it had been suspended; its
	// pod start timeout starts afresh.
	ReasonResumed = "Resumed"
	// ReasonQueuePosition: the place of a Job queued in Kueue, waiting
	// for admission, first known or changed (Event.Position; Message
	// says it in words). At most one per read of its LocalQueue (see
	// Options.QueuePositionInterval); none where Kueue's visibility API
	// is not served. Workload is empty: it is not one of Kueue's
	// condition events, nor in Queueing.Events.
	ReasonQueuePosition = "QueuePosition"
)

// queueEvent describes the Job's Suspended condition as an Event, if it
// has one: True is ReasonQueued, False (reason JobResumed) ReasonResumed.
// Its ID is a hash of the Job's UID, the reason and the condition's
// transition time, so each suspension has its own ID and a replay keeps
// it.
func queueEvent(job *batchv1.Job, seen time.Time) (Event, bool) {
	for _, c := range job.Status.Conditions {
		if c.Type != batchv1.JobSuspended {
			continue
		}
		e := Event{Job: job.Name, Message: c.Message, Time: c.LastTransitionTime.Time}
		switch c.Status {
		case corev1.ConditionTrue:
			e.Reason = ReasonQueued
		case corev1.ConditionFalse:
			e.Reason = ReasonResumed
		default:
			return Event{}, false
		}
		if e.Time.IsZero() {
			e.Time = seen
		}
		e.ID = eventID(job.UID, "", e.Reason+"\x00"+c.LastTransitionTime.UTC().Format(time.RFC3339))
		return e, true
	}
	return Event{}, false
}

// EventSink receives a run's events. The Job's events and its pods' come
// from two watch streams and reach the sink in the order Wait sees them:
// a pod's Pending may come before the Resumed of its Job; Time orders
// them. Wait calls Event from its own
// goroutine, one event at a time, in order; a slow sink delays only that
// run. A sink shared by several Waits must be safe for concurrent use.
type EventSink interface {
	Event(Event)
}

// EventFunc adapts a function to an EventSink.
type EventFunc func(Event)

// Event calls f(e).
func (f EventFunc) Event(e Event) { f(e) }

// eventID is the stable ID of (pod, phase, reason).
func eventID(pod types.UID, phase corev1.PodPhase, reason string) string {
	sum := sha256.Sum256([]byte(string(pod) + "\x00" + string(phase) + "\x00" + reason))
	return hex.EncodeToString(sum[:12])
}

// podEvent describes pod's current phase as an Event without PrevID;
// seen is the fallback time.
func podEvent(job string, pod *corev1.Pod, container string, seen time.Time) Event {
	phase := pod.Status.Phase
	if phase == "" {
		phase = corev1.PodPending
	}
	e := Event{Job: job, Pod: pod.Name, Phase: phase, Reason: pod.Status.Reason, Message: pod.Status.Message}
	name := runContainer(pod, container)
	s := containerStatus(pod, name)
	var at time.Time
	switch phase {
	case corev1.PodPending:
		at = pod.CreationTimestamp.Time
		if e.Reason != "" {
			break
		}
		if c := unschedulable(pod); c != nil {
			e.Reason, e.Message, at = c.Reason, c.Message, c.LastTransitionTime.Time
		} else if w, ok := waitingWith(pod, func(r string) bool { return r != "" }); ok {
			e.Reason, e.Message = w.State.Waiting.Reason, w.State.Waiting.Message
		}
	case corev1.PodRunning:
		if pod.Status.StartTime != nil {
			at = pod.Status.StartTime.Time
		}
		if s != nil && s.State.Running != nil {
			at = s.State.Running.StartedAt.Time
		}
		if e.Reason == "" && s != nil && s.State.Waiting != nil {
			e.Reason, e.Message = s.State.Waiting.Reason, s.State.Waiting.Message
		}
	case corev1.PodSucceeded, corev1.PodFailed:
		if s != nil && s.State.Terminated != nil {
			at = s.State.Terminated.FinishedAt.Time
			if e.Reason == "" {
				e.Reason, e.Message = s.State.Terminated.Reason, s.State.Terminated.Message
			}
		}
		if c := podCondition(pod, corev1.DisruptionTarget); c != nil && c.Status == corev1.ConditionTrue && at.IsZero() {
			at = c.LastTransitionTime.Time
		}
	}
	if at.IsZero() {
		at = seen
	}
	e.Time = at
	e.ID = eventID(pod.UID, phase, e.Reason)
	return e
}

// phaseRank orders phases; a pod never goes back to a lower rank, so a
// stale snapshot seen late is not reported as news.
func phaseRank(p corev1.PodPhase) int {
	switch p {
	case corev1.PodRunning, corev1.PodUnknown:
		return 1
	case corev1.PodSucceeded, corev1.PodFailed:
		return 2
	}
	return 0
}

// eventLog remembers what one Wait reported, to drop repeats and link
// each event to the one before. Used from one goroutine.
type eventLog struct {
	sink EventSink
	seen map[string]bool
	rank map[types.UID]int
	last string
}

func newEventLog(sink EventSink) *eventLog {
	return &eventLog{sink: sink, seen: map[string]bool{}, rank: map[types.UID]int{}}
}

// observe reports e about pod unless it was reported already or is older
// than what was reported for that pod.
func (l *eventLog) observe(uid types.UID, e Event) {
	r := phaseRank(e.Phase)
	if l.seen[e.ID] || r < l.rank[uid] {
		return
	}
	l.seen[e.ID] = true
	l.rank[uid] = r
	e.PrevID = l.last
	l.last = e.ID
	l.sink.Event(e)
}

package jobwatch

import (
	"cmp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons of the events of Kueue's (Event.Workload set), read from the
// conditions of the Job's Workload. Event.KueueReason keeps Kueue's own.
const (
	// ReasonWaitingForQuota: the Workload waits for quota in its
	// ClusterQueue (QuotaReserved False, reason Pending); Message says
	// what is short.
	ReasonWaitingForQuota = "WaitingForQuota"
	// ReasonInadmissible: Kueue cannot admit the Workload as things are:
	// its LocalQueue or ClusterQueue does not exist or is stopped or
	// inactive (QuotaReserved False, reason Inadmissible); Message says
	// which. A missing LocalQueue ends the Wait (NotAdmitted).
	ReasonInadmissible = "Inadmissible"
	// ReasonAdmitted: Kueue admitted the Workload (Admitted True);
	// ClusterQueue names where, and Kueue resumes the Job.
	ReasonAdmitted = "Admitted"
	// ReasonPreempted: Kueue preempted the Workload (Evicted True, reason
	// Preempted) for one of higher priority, in its ClusterQueue or
	// cohort (KueueReason); Kueue suspends the Job again and deletes its
	// pods, and the run goes on when it is admitted again.
	ReasonPreempted = "Preempted"
	// ReasonEvicted: Kueue evicted the Workload for another reason
	// (KueueReason: PodsReadyTimeout, AdmissionCheck,
	// ClusterQueueStopped, LocalQueueStopped, NodeFailures, ...); the Job
	// is suspended again.
	ReasonEvicted = "Evicted"
	// ReasonRequeued: after an eviction, the Workload is back in its
	// queue (Requeued True, QuotaReserved False).
	ReasonRequeued = "Requeued"
	// ReasonDeactivated: Kueue deactivated the Workload (Evicted with
	// reason Deactivated...); the Wait ends (Deactivated, or
	// DeadlineExceeded past its maximum execution time).
	ReasonDeactivated = "Deactivated"
)

// kueueEvents describes a Workload's state as the Events it implies, in
// the order they happened, without PrevID. Each ID is a hash of the
// Workload's UID, the reason and the transition time of the condition
// behind it (for a requeue, of the eviction it follows), so a state seen
// again (a relist, a later Wait) gives the same IDs. seen is the time of
// a condition without one.
func kueueEvents(wl *kueueWorkload, job string, seen time.Time) []Event {
	var out []Event
	add := func(reason string, c workloadCondition, key time.Time) *Event {
		e := Event{Job: job, Workload: wl.Name, Reason: reason, KueueReason: c.Reason, Message: c.Message, Time: c.Time}
		if e.Time.IsZero() {
			e.Time = seen
		}
		e.ID = eventID(wl.UID, "", "kueue\x00"+reason+"\x00"+key.UTC().Format(time.RFC3339))
		out = append(out, e)
		return &out[len(out)-1]
	}
	evicted, isEvicted := wl.cond(condEvicted)
	isEvicted = isEvicted && evicted.Status == metav1.ConditionTrue
	if c, ok := wl.cond(condQuotaReserved); ok && c.Status == metav1.ConditionFalse {
		switch {
		case c.Reason == kueueInadmissible:
			add(ReasonInadmissible, c, c.Time)
		case !isEvicted: // while evicted, it is the requeue, below
			add(ReasonWaitingForQuota, c, c.Time)
		}
	}
	if c, ok := wl.cond(condAdmitted); ok && c.Status == metav1.ConditionTrue {
		e := add(ReasonAdmitted, c, c.Time)
		e.ClusterQueue = wl.ClusterQueue
		if q, ok := wl.cond(condQuotaReserved); ok && q.Status == metav1.ConditionTrue && q.Message != "" {
			e.Message = q.Message // "Quota reserved in ClusterQueue cq"
		}
	}
	if isEvicted {
		reason, c := ReasonEvicted, evicted
		switch {
		case evicted.Reason == kueuePreempted:
			reason = ReasonPreempted
			if p, ok := wl.cond(condPreempted); ok && p.Status == metav1.ConditionTrue && p.Reason != "" {
				c.Reason = p.Reason
			}
		case strings.HasPrefix(evicted.Reason, kueueDeactivated):
			reason = ReasonDeactivated
		}
		add(reason, c, evicted.Time)
		q, _ := wl.cond(condQuotaReserved)
		if r, ok := wl.cond(condRequeued); ok && r.Status == metav1.ConditionTrue && q.Status != metav1.ConditionTrue {
			e := add(ReasonRequeued, r, evicted.Time)
			e.Time = latest(r.Time, q.Time, evicted.Time, e.Time)
		}
	}
	slices.SortStableFunc(out, func(a, b Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(kueueOrder[a.Reason], kueueOrder[b.Reason]))
	})
	return out
}

// kueueOrder orders the events of one instant as Kueue makes them.
var kueueOrder = map[string]int{
	ReasonPreempted: 1, ReasonEvicted: 1, ReasonDeactivated: 1,
	ReasonRequeued:        2,
	ReasonWaitingForQuota: 3, ReasonInadmissible: 3,
	ReasonAdmitted: 4,
}

// latest returns the latest of ts.
func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

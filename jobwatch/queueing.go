package jobwatch

import (
	"cmp"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/kubeworker/kubeworker/manifest"
)

// Queueing is what Kueue did with a run whose Job carries Kueue's
// queue-name label (manifest.LabelQueueName): Result.Queue. Times are
// the cluster's (condition transition times, whole seconds) when the
// Workload gave them, else when the Watcher saw the change. A Wait
// that begins late (a restarted worker) counts what the Workload still
// shows: Preemptions from Kueue's own count, the rest from what it sees.
type Queueing struct {
	// LocalQueue is the Job's queue-name label.
	LocalQueue string
	// ClusterQueue is the ClusterQueue that last admitted the Job, empty
	// if none did.
	ClusterQueue string
	// Workload names the Kueue Workload of the Job, empty when none was
	// seen (Kueue not installed, not followed, or too slow).
	Workload string
	// QueuedAt is when the run entered its queue: the Job's creation.
	QueuedAt time.Time
	// AdmittedAt is when Kueue last admitted the Job; zero if never.
	AdmittedAt time.Time
	// Waited is the total time the run spent waiting for admission: from
	// QueuedAt to the first admission, plus from each eviction to the
	// admission after it, plus, for a run that ended waiting, from the
	// last of those to its end.
	Waited time.Duration
	// Preemptions counts the times Kueue preempted the Job.
	Preemptions int
	// Requeues counts the times Kueue put the Job back in its queue after
	// an eviction.
	Requeues int
	// Evictions are Kueue's evictions of the Job, preemptions among
	// them, oldest first.
	Evictions []Eviction
	// Events are the events of Kueue's that the Wait reported (those with
	// Event.Workload set), in order.
	Events []Event
	// Position is the run's last known place in its queues while it
	// waited, from Kueue's visibility API (see the package doc's Kueue
	// section and Options.QueuePositionInterval). It is nil when never
	// known: the API not served, Kueue not followed, or the run admitted
	// before its first read. It keeps its last value once the run is
	// admitted.
	Position *QueuePosition
}

// Eviction is one eviction of a run's Workload by Kueue.
type Eviction struct {
	// Reason is the Evicted condition's reason: Preempted,
	// PodsReadyTimeout, AdmissionCheck, ClusterQueueStopped,
	// LocalQueueStopped, NodeFailures, Deactivated... .
	Reason string
	// Preemption is, for Reason Preempted, the Preempted condition's
	// reason: InClusterQueue, InCohortReclamation, InCohortFairSharing or
	// InCohortReclaimWhileBorrowing.
	Preemption string
	// Message is Kueue's, such as "Preempted to accommodate a workload
	// (UID: ..., JobUID: ...) due to prioritization in the ClusterQueue".
	Message string
	// Time is when it happened.
	Time time.Time
}

// queueRun is the Kueue state of one Wait, for a Job with a queue-name
// label. It is used by Wait's goroutine only.
type queueRun struct {
	ws        *workloadStream // nil: Kueue is not followed
	q         Queueing
	wl        *kueueWorkload // the Workload as last seen
	seen      map[string]bool
	begun     bool      // the first look is done
	waiting   bool      // waiting for admission now
	requeued  bool      // the current wait follows an eviction
	waitSince time.Time // when the current wait began
	counted   bool      // QueueWaitStarted without its QueueWaitEnded
	timer     clock.Timer
	timedOut  bool         // the queue timeout passed while waiting
	pos       *positionSub // registered for positions while waiting; else nil
	posRead   uint64       // the read of positions last taken in
}

// followQueue starts following Kueue for a Job that has the queue-name
// label: its Workloads are read from the namespace's Workload stream,
// opened now if need be.
func (r *run) followQueue() {
	lq := r.job.Labels[manifest.LabelQueueName]
	if lq == "" || r.kq != nil {
		return
	}
	r.s.followKueue(r.wt, r.job.UID)
	r.kq = &queueRun{ws: r.s.workloads(), seen: map[string]bool{}, q: Queueing{LocalQueue: lq, QueuedAt: r.job.CreationTimestamp.Time}}
}

// observeQueue reads the Workload's states since the last look, reports
// Kueue's events, and follows the run's waits and admissions: the queue
// timeout, Waited, and the metrics.
func (r *run) observeQueue() {
	k := r.kq
	now := r.clock.Now()
	for _, wl := range r.wt.takeWorkloads() {
		if wl.jobUID() == r.job.UID {
			r.kueueState(wl, now)
		}
	}
	wl := k.ws.of(r.job.UID)
	if wl != nil {
		r.kueueState(wl, now)
	}
	waiting := queued(r.job, k.wl)
	switch {
	case !k.begun:
		k.begun = true
		if waiting {
			since, requeued := k.q.QueuedAt, false
			if wl != nil && wl.is(condEvicted) {
				since, requeued = cmp.Or(wl.Conditions[condEvicted].Time, since), true
			}
			r.startWaiting(since, requeued, r.opts.QueueTimeout-now.Sub(r.began))
		}
	case waiting && !k.waiting:
		since := now
		if k.wl != nil && k.wl.is(condEvicted) && !k.wl.Conditions[condEvicted].Time.IsZero() {
			since = k.wl.Conditions[condEvicted].Time
		}
		r.startWaiting(since, true, r.opts.QueueTimeout)
	case !waiting && k.waiting:
		r.admitted(cmp.Or(admittedAt(k.wl, r.job), now))
	}
	if !waiting && k.q.AdmittedAt.IsZero() && k.wl != nil && k.wl.is(condAdmitted) {
		// Admitted before the Wait began (a restarted worker): if never
		// evicted, it waited from its creation to that admission.
		k.q.AdmittedAt = k.wl.Conditions[condAdmitted].Time
		if _, evicted := k.wl.cond(condEvicted); !evicted && k.wl.PreemptedCount == 0 {
			k.q.Waited = max(k.q.AdmittedAt.Sub(k.q.QueuedAt), 0)
		}
	}
	r.followPosition()
}

// admittedAt returns when the run was admitted: the Workload's Admitted
// condition's time, else (no Workload known, or one that lags) the Job's
// resume; zero if unknown.
func admittedAt(wl *kueueWorkload, job *batchv1.Job) time.Time {
	if wl != nil {
		if c, ok := wl.cond(condAdmitted); ok && c.Status == metav1.ConditionTrue && !c.Time.IsZero() {
			return c.Time
		}
	}
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobSuspended && c.Status == corev1.ConditionFalse {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// kueueState takes in one state of the run's Workload: its events, its
// ClusterQueue, Kueue's count of preemptions.
func (r *run) kueueState(wl *kueueWorkload, now time.Time) {
	k := r.kq
	k.wl, k.q.Workload = wl, wl.Name
	if wl.ClusterQueue != "" {
		k.q.ClusterQueue = wl.ClusterQueue
	}
	for _, e := range kueueEvents(wl, r.ref.Name, now) {
		if k.seen[e.ID] {
			continue
		}
		k.seen[e.ID] = true
		k.q.Events = append(k.q.Events, e)
		switch e.Reason {
		case ReasonPreempted:
			k.q.Preemptions++
			r.w.rec.Preempted()
			k.q.Evictions = append(k.q.Evictions, Eviction{Reason: kueuePreempted, Preemption: e.KueueReason, Message: e.Message, Time: e.Time})
		case ReasonEvicted, ReasonDeactivated:
			k.q.Evictions = append(k.q.Evictions, Eviction{Reason: e.KueueReason, Message: e.Message, Time: e.Time})
		case ReasonRequeued:
			k.q.Requeues++
			r.w.rec.Requeued()
		}
		if r.events != nil {
			r.events.observe(wl.UID, e)
		}
	}
	k.q.Preemptions = max(k.q.Preemptions, wl.PreemptedCount)
}

// queued reports whether the run waits for Kueue's admission: its
// Workload is evicted, or not admitted while the Job is suspended; with
// no Workload known, the Job is suspended. A Job that runs is never
// waiting, whatever a lagging Workload stream says, unless Kueue is
// evicting it.
func queued(job *batchv1.Job, wl *kueueWorkload) bool {
	if wl == nil {
		return suspended(job)
	}
	return wl.is(condEvicted) || (!wl.is(condAdmitted) && suspended(job))
}

// startWaiting notes that the run waits for admission from since, and
// arms the queue timeout for d (QueueTimeout, less what has passed of
// it).
func (r *run) startWaiting(since time.Time, requeued bool, d time.Duration) {
	k := r.kq
	k.waiting, k.requeued, k.waitSince = true, requeued, since
	k.stopTimer()
	if r.opts.QueueTimeout > 0 {
		k.timer = r.clock.NewTimer(max(d, 0))
	}
	if !k.counted {
		k.counted = true
		r.w.rec.QueueWaitStarted()
	}
}

// admitted notes the admission at at of a run that waited.
func (r *run) admitted(at time.Time) {
	k := r.kq
	waited := max(at.Sub(k.waitSince), 0)
	k.q.Waited += waited
	k.q.AdmittedAt = at
	k.waiting = false
	k.stopTimer()
	r.w.rec.AdmissionWait(waited, k.requeued)
	if k.counted {
		k.counted = false
		r.w.rec.QueueWaitEnded()
	}
}

func (k *queueRun) stopTimer() {
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
	k.timedOut = false
}

// queueTimer returns the channel of the queue timeout, nil if none runs.
func (r *run) queueTimer() <-chan time.Time {
	if r.kq == nil {
		return nil
	}
	return timerC(r.kq.timer)
}

// queueing returns Result.Queue as of now: nil without a queue.
func (r *run) queueing() *Queueing {
	k := r.kq
	if k == nil {
		return nil
	}
	q := k.q
	if k.waiting {
		q.Waited += max(r.clock.Since(k.waitSince), 0)
	}
	q.Evictions, q.Events = slices.Clone(q.Evictions), slices.Clone(q.Events)
	return &q
}

// endQueue stops the queue timeout and, if the run was counted as
// queued, counts it no longer; Wait calls it as it returns.
func (r *run) endQueue() {
	if k := r.kq; k != nil {
		k.stopTimer()
		k.leavePosition()
		if k.counted {
			k.counted = false
			r.w.rec.QueueWaitEnded()
		}
	}
}

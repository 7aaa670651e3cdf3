package jobwatch

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// How Kueue ends a run: not admitted, deactivated, or past the maximum
// execution time of its Workload.

// queueEnd returns the Result of a run that Kueue ends, if it does: its
// Workload deactivated (Deactivated, or DeadlineExceeded past its maximum
// execution time), its LocalQueue missing, or the queue timeout passed
// while it waits (NotAdmitted). A Workload that has finished ends
// nothing: the Job's own end decides.
func (r *run) queueEnd() (Result, bool) {
	k := r.kq
	wl := k.wl
	if wl != nil && !wl.is(condFinished) && wl.deactivated() {
		res := r.last
		res.Outcome = Deactivated
		var maxExec bool
		res.Reason, res.Message, maxExec = deactivation(wl)
		if maxExec {
			res.Outcome = DeadlineExceeded
		}
		res.FinishedAt = r.clock.Now()
		return res, true
	}
	if !k.waiting {
		return Result{}, false
	}
	if wl != nil && localQueueMissing(wl, k.q.LocalQueue) {
		return r.notAdmitted(), true
	}
	if k.timedOut {
		return r.notAdmitted(), true
	}
	return Result{}, false
}

// deactivation returns Kueue's reason and message for a deactivated
// Workload, and whether it ran past its maximum execution time.
func deactivation(wl *kueueWorkload) (reason, message string, maxExec bool) {
	if c, ok := wl.cond(condEvicted); ok && c.Status == metav1.ConditionTrue && strings.HasPrefix(c.Reason, kueueDeactivated) {
		return c.Reason, c.Message, c.Reason == kueueDeactivated+"DueTo"+kueueMaxExecTime
	}
	if c, ok := wl.cond(condDeactivationTarget); ok && c.Status == metav1.ConditionTrue {
		return c.Reason, c.Message, c.Reason == kueueMaxExecTime
	}
	return kueueDeactivated, "The workload is deactivated", false
}

// localQueueMissing reports whether Kueue says that the Workload's
// LocalQueue does not exist: QuotaReserved False, reason Inadmissible,
// with the message Kueue's workload controller writes for it, naming
// the queue of the Workload's spec or of the Job's label. (Kueue gives
// no reason of its own to this case, so its message is matched, in
// full.)
func localQueueMissing(wl *kueueWorkload, label string) bool {
	c, ok := wl.cond(condQuotaReserved)
	if !ok || c.Status != metav1.ConditionFalse || c.Reason != kueueInadmissible {
		return false
	}
	for _, q := range []string{wl.QueueName, label} {
		if q != "" && c.Message == fmt.Sprintf("LocalQueue %s doesn't exist", q) {
			return true
		}
	}
	return false
}

// notAdmitted returns the NotAdmitted Result, diagnosed from Kueue's last
// word on the Workload: its QuotaReserved condition.
func (r *run) notAdmitted() Result {
	k := r.kq
	d := &Diagnosis{LocalQueue: k.q.LocalQueue, Cause: CauseNoWorkload}
	switch wl := k.wl; {
	case wl == nil:
		d.Message = r.noWorkload()
	default:
		c, _ := wl.cond(condQuotaReserved)
		d.Reason, d.Message = c.Reason, c.Message
		switch {
		case localQueueMissing(wl, k.q.LocalQueue) || (c.Reason == kueueInadmissible && strings.HasSuffix(c.Message, " doesn't exist")):
			d.Cause = CauseQueueMissing
		case c.Reason == kueueInadmissible:
			d.Cause = CauseQueueInactive
		default:
			d.Cause = CauseQuotaWait
			if c.Reason == "" {
				d.Message = fmt.Sprintf("Kueue has not tried to admit Workload %s yet", wl.Name)
			}
		}
	}
	res := r.last
	res.Outcome, res.Diagnosis, res.Reason, res.Message = NotAdmitted, d, d.Reason, d.Message
	res.FinishedAt = r.clock.Now()
	return res
}

// noWorkload says why no Workload of the Job is known.
func (r *run) noWorkload() string {
	ws := r.kq.ws
	switch {
	case ws == nil:
		return "Kueue is not followed (no dynamic client: see jobwatch.Options.Dynamic); the Job is still suspended"
	case ws.notServed.Load():
		return "Kueue's Workload API is not served (is Kueue installed?); the Job is still suspended"
	case !ws.usable():
		if err := ws.lw.failingErr(); err != nil {
			return "the Workloads could not be read (" + err.Error() + "); the Job is still suspended"
		}
		return "the Workloads have not been read yet; the Job is still suspended"
	}
	return "Kueue made no Workload for the Job (does it manage batch/v1 Jobs, and this queue-name label?); the Job is still suspended"
}

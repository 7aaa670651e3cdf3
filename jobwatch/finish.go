package jobwatch

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// What a Wait does with each state it reads, and how it ends.

// report sends new pod phases to the event sink.
func (r *run) report(pods []*corev1.Pod) {
	if r.events == nil {
		return
	}
	now := r.clock.Now()
	for _, p := range r.wt.takeSnaps() {
		if podOfJob(p, r.job.UID) {
			r.events.observe(p.UID, podEvent(r.ref.Name, p, r.opts.Container, now))
		}
	}
	for _, p := range pods {
		r.events.observe(p.UID, podEvent(r.ref.Name, p, r.opts.Container, now))
	}
}

func (r *run) feedLogs(pods []*corev1.Pod, gone map[types.UID]bool) {
	if r.logs == nil {
		return
	}
	targets := make([]logTarget, 0, len(pods))
	for _, p := range pods {
		name := runContainer(p, r.opts.Container)
		s := containerStatus(p, name)
		ready := podStarted(p) || (s != nil && (s.State.Running != nil || s.State.Terminated != nil))
		targets = append(targets, logTarget{pod: p.Name, uid: p.UID, container: name, ready: ready, done: podFinished(p) || gone[p.UID]})
	}
	r.logs.update(targets, false)
}

// diagnose explains a pod that has not started: from its status and the
// Job's and pod's events.
func (r *run) diagnose(ctx context.Context) Result {
	pod := r.newest()
	ectx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	stop := context.AfterFunc(r.w.ctx, cancel)
	defer stop()
	events, err := listEvents(ectx, r.w.client, r.job, pod)
	if err != nil {
		r.w.logger.Warn("jobwatch: could not list events for a diagnosis", "job", r.ref.String(), "err", err)
	}
	res := r.last
	res.Outcome, res.Diagnosis = diagnose(pod, events)
	res.Reason, res.Message = res.Diagnosis.Reason, res.Diagnosis.Message
	res.FinishedAt = r.clock.Now()
	return res
}

// finish lets the log follower write the rest and returns res.
func (r *run) finish(ctx context.Context, res Result) Result {
	r.w.logger.Debug("jobwatch: run ended", "job", r.ref.String(), "outcome", res.Outcome.String(), "exitCode", res.ExitCode,
		"pod", res.Pod, "pods", len(r.pods), "listedPods", len(r.listed))
	if r.logs == nil {
		return res
	}
	r.logs.update(nil, true)
	select {
	case <-r.logs.done:
	case <-ctx.Done():
	case <-r.w.ctx.Done():
	}
	r.stopLogs()
	<-r.logs.done
	res.LastLogTime = r.logs.last
	return res
}

// abort stops the log follower and returns what is known.
func (r *run) abort() Result {
	if r.logs != nil {
		r.stopLogs()
		<-r.logs.done
		r.last.LastLogTime = r.logs.last
	}
	res := r.last
	res.Outcome = Unknown
	return res
}

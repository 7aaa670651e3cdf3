package jobwatch

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// What a Wait does with each state it reads, and how it ends.

// report sends the Job's queueing and new pod phases to the event sink.
func (r *run) report(pods []*corev1.Pod) {
	if r.events == nil {
		return
	}
	now := r.clock.Now()
	if e, ok := queueEvent(r.job, now); ok {
		r.events.observe(r.job.UID, e)
	}
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
		targets = append(targets, logTarget{pod: p.Name, uid: p.UID, container: name, ready: logReadable(p, name), done: podFinished(p) || gone[p.UID]})
	}
	r.logs.update(targets, false)
}

// logReadable reports whether the named container of pod has a log to
// read: the pod has left Pending, or the container runs or has run.
func logReadable(p *corev1.Pod, name string) bool {
	s := containerStatus(p, name)
	return podStarted(p) || (s != nil && (s.State.Running != nil || s.State.Terminated != nil))
}

// diagnose explains a pod that has not started: from its status and the
// Job's and pod's events.
func (r *run) diagnose(ctx context.Context) Result {
	res := r.last
	var d *Diagnosis
	res.Outcome, d = r.diagnosis(ctx)
	res.Diagnosis, res.Reason, res.Message = d, d.Reason, d.Message
	res.FinishedAt = r.clock.Now()
	return res
}

// explain adds a Diagnosis to a Result that ended with a pod that never
// started (the Job failed while it was pending, for example past its
// activeDeadlineSeconds); Outcome, Reason and Message stay Classify's.
func (r *run) explain(ctx context.Context, res Result) Result {
	switch res.Outcome {
	case ImagePullError, CrashLoop, Unschedulable, NeverStarted:
		_, res.Diagnosis = r.diagnosis(ctx)
	}
	return res
}

// diagnosis lists the events of the Job and its newest pod, diagnoses,
// and fills in what the trimmed cache lacks (see enrich).
func (r *run) diagnosis(ctx context.Context) (Outcome, *Diagnosis) {
	pod := r.newest()
	ectx, cancel := context.WithTimeout(ctx, eventsTimeout)
	defer cancel()
	stop := context.AfterFunc(r.w.ctx, cancel)
	defer stop()
	events, err := listEvents(ectx, r.w.client, r.job, pod)
	if err != nil {
		r.w.logger.Warn("jobwatch: could not list events for a diagnosis", "job", r.ref.String(), "err", err)
	}
	outcome, d := diagnose(pod, events)
	if err := enrich(ectx, r.w.client, r.ref.Namespace, pod, d); err != nil {
		r.w.logger.Debug("jobwatch: could not read the pod's spec or the nodes for a diagnosis", "job", r.ref.String(), "err", err)
	}
	return outcome, d
}

// finish lets the log follower write the rest, adds the log tail and
// returns res.
func (r *run) finish(ctx context.Context, res Result) Result {
	defer r.w.observeEnd(r.job, r.pods, r.opts.Container)
	r.w.logger.Debug("jobwatch: run ended", "job", r.ref.String(), "outcome", res.Outcome.String(), "exitCode", res.ExitCode,
		"pod", res.Pod, "pods", len(r.pods), "listedPods", len(r.listed))
	if r.logs != nil {
		r.logs.update(nil, true)
		select {
		case <-r.logs.done:
		case <-ctx.Done():
		case <-r.w.ctx.Done():
		}
		r.stopLogs()
		<-r.logs.done
		res.LastLogTime = r.logs.last
	}
	res.LogTail = r.logTail(ctx, res)
	res.Queue = r.queueing()
	return res
}

// abort stops the log follower and returns what is known, with the tail
// the follower has of the newest pod's log, if any; it reads nothing.
func (r *run) abort() Result {
	if r.logs != nil {
		r.stopLogs()
		<-r.logs.done
		r.last.LastLogTime = r.logs.last
		if p := r.newest(); p != nil && p.UID == r.logs.tailPod && p.Name == r.last.Pod {
			r.last.LogTail = r.logs.tail.slice()
		}
	}
	res := r.last
	res.Outcome = Unknown
	res.Queue = r.queueing()
	return res
}

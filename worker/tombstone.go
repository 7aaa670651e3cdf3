package worker

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// A cancelled run leaves a tombstone in its cluster: a core/v1 Event of
// its Job, reason jobwatch.ReasonCancelled, with the caller's reason as
// message and the Worker's and the run's labels. So a second Cancel, from
// any Worker of the same Name (another replica), finds the run cancelled
// once its Job is gone, for as long as the cluster keeps Events
// (kube-apiserver's --event-ttl, an hour by default); and `kubectl get
// events` says who stopped the run and why.

// tombstone records the cancel of cj's Job. A failure is logged: the
// cancel goes on, and only a second Cancel from another Worker, once the
// Job is gone, tells it from a run that never was.
func (cj *cancelling) tombstone(ctx context.Context, reason string) {
	w, job := cj.w, cj.job
	if cj.c.client == nil {
		return
	}
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: job.Name + ".",
			Namespace:    job.Namespace,
			Labels:       map[string]string{LabelWorker: w.opts.Name, manifest.LabelRunID: cj.runID},
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "batch/v1", Kind: "Job", Namespace: job.Namespace, Name: job.Name, UID: job.UID,
		},
		Reason:              jobwatch.ReasonCancelled,
		Message:             reason,
		Type:                corev1.EventTypeNormal,
		Source:              corev1.EventSource{Component: "kubeworker"},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: "kubeworker.io/worker",
		ReportingInstance:   w.opts.Name,
	}
	_, err := cj.c.client.CoreV1().Events(job.Namespace).Create(ctx, ev, metav1.CreateOptions{})
	if err != nil {
		w.log.WarnContext(ctx, "could not record the cancel in an Event (does the worker have create on events?); a Cancel from another Worker, once the Job is gone, will not know it", "run", cj.runID, "pid", cj.pid.String(), "error", err)
	}
}

// cancelledIn reports whether c keeps a tombstone in namespace ns of this
// Worker's run runID, or, with job set, of that Job.
func (w *Worker) cancelledIn(ctx context.Context, c *clusterParts, ns, runID, job string) bool {
	if c.client == nil {
		return false
	}
	sel := labels.Set{LabelWorker: w.opts.Name}
	fs := fields.Set{"reason": jobwatch.ReasonCancelled}
	if runID != "" {
		sel[manifest.LabelRunID] = runID
	}
	if job != "" {
		fs["involvedObject.name"] = job
	}
	list, err := c.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(sel).String(), FieldSelector: fields.SelectorFromSet(fs).String(), Limit: 1,
	})
	if err != nil {
		w.log.DebugContext(ctx, "look for a cancel's Event", "namespace", ns, "run", runID, "job", job, "error", err)
		return false
	}
	return len(list.Items) > 0
}

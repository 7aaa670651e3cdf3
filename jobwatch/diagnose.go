package jobwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// diagnose explains why pod (the Job's newest pod, nil if it has none)
// has not started, from its status and from events, and returns the
// Outcome that says so: ImagePullError, CrashLoop, Unschedulable or
// NeverStarted. The pod's status is current and certain, so it is read
// first; events (oldest first) fill in what the status lacks.
func diagnose(pod *corev1.Pod, events []corev1.Event) (Outcome, *Diagnosis) {
	d := &Diagnosis{Events: events}
	if pod != nil {
		if s, ok := waitingWith(pod, func(reason string) bool { return imagePullReasons[reason] }); ok {
			d.Reason, d.Message, d.Container = s.State.Waiting.Reason, s.State.Waiting.Message, s.Name
			return ImagePullError, d
		}
		if s, ok := waitingWith(pod, func(reason string) bool { return reason == crashLoopReason }); ok {
			d.Reason, d.Message, d.Container = s.State.Waiting.Reason, s.State.Waiting.Message, s.Name
			return CrashLoop, d
		}
		if c := unschedulable(pod); c != nil {
			d.Reason, d.Message, d.Scheduling = c.Reason, c.Message, parseScheduling(c.Message)
			return Unschedulable, d
		}
	}
	// Newest event first: the latest word on the matter.
	for _, e := range slices.Backward(events) {
		switch {
		case e.Reason == "FailedScheduling" && e.InvolvedObject.Kind == "Pod":
			d.Reason, d.Message, d.Scheduling = e.Reason, e.Message, parseScheduling(e.Message)
			return Unschedulable, d
		case e.Reason == "FailedCreate" && e.InvolvedObject.Kind == "Job":
			d.Reason, d.Message = e.Reason, e.Message
			return NeverStarted, d
		}
	}
	if pod != nil {
		if s, ok := waitingWith(pod, func(reason string) bool { return reason != "" }); ok {
			d.Reason, d.Message, d.Container = s.State.Waiting.Reason, s.State.Waiting.Message, s.Name
		}
	}
	return NeverStarted, d
}

// listEvents returns the events of the Job and of pod (if not nil),
// oldest first. A failure to list one kind is returned joined, with
// whatever was listed.
func listEvents(ctx context.Context, client kubernetes.Interface, job *batchv1.Job, pod *corev1.Pod) ([]corev1.Event, error) {
	type object struct {
		kind, name string
		uid        types.UID
	}
	objects := []object{{"Job", job.Name, job.UID}}
	if pod != nil {
		objects = append(objects, object{"Pod", pod.Name, pod.UID})
	}
	var all []corev1.Event
	var errs []error
	for _, o := range objects {
		sel := fields.Set{"involvedObject.kind": o.kind, "involvedObject.name": o.name, "involvedObject.uid": string(o.uid)}
		list, err := client.CoreV1().Events(job.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
		if err != nil {
			errs = append(errs, fmt.Errorf("list events of %s %s/%s: %w", o.kind, job.Namespace, o.name, err))
			continue
		}
		for _, e := range list.Items {
			e.ManagedFields = nil
			all = append(all, e)
		}
	}
	sortEvents(all)
	return all, errors.Join(errs...)
}

// sortEvents orders events oldest first by their best time: eventTime,
// else lastTimestamp, else firstTimestamp, else creation time.
func sortEvents(events []corev1.Event) {
	slices.SortStableFunc(events, func(a, b corev1.Event) int {
		return cmp.Compare(eventTime(a).UnixNano(), eventTime(b).UnixNano())
	})
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

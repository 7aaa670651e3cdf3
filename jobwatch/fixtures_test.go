package jobwatch

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubeworker/kubeworker/manifest"
)

// Builders of Job and pod objects for the pure tests.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(sec int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(sec) * time.Second)) }

func testJob(mods ...func(*batchv1.Job)) *batchv1.Job {
	labels := map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "ns", UID: "job-uid", Labels: labels, CreationTimestamp: at(0)},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "example.com/run:1"}},
				},
			},
		},
		Status: batchv1.JobStatus{StartTime: &metav1.Time{Time: t0}},
	}
	for _, m := range mods {
		m(j)
	}
	return j
}

func withCondition(typ batchv1.JobConditionType, reason string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{
			Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: "job says " + reason, LastTransitionTime: at(10),
		})
	}
}

func withBackoffLimit(n int32) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Spec.BackoffLimit = new(n) }
}

func withCounts(succeeded, failed int32) func(*batchv1.Job) {
	return func(j *batchv1.Job) { j.Status.Succeeded, j.Status.Failed = succeeded, failed }
}

func deleting(j *batchv1.Job) { j.DeletionTimestamp = new(at(20)) }

func testPod(name string, created int, mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), CreationTimestamp: at(created),
			Labels: map[string]string{batchv1.JobNameLabel: "run-1", batchv1.ControllerUidLabel: "job-uid", manifest.LabelManagedBy: manifest.ManagedBy},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: "run-1", UID: "job-uid", Controller: new(true),
			}},
		},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func withContainers(names ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers = nil
		for _, n := range names {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n})
		}
	}
}

func setStatus(p *corev1.Pod, name string, state corev1.ContainerState) {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			p.Status.ContainerStatuses[i].State = state
			return
		}
	}
	p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: name, State: state})
}

func running(p *corev1.Pod) {
	p.Status.Phase = corev1.PodRunning
	p.Status.StartTime = new(at(2))
	setStatus(p, "main", corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at(3)}})
}

// exited ends container name with code and reason; the pod's phase
// follows from code if name is "main".
func exited(name string, code int32, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		setStatus(p, name, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: code, Reason: reason, Message: "container says " + reason, FinishedAt: at(9),
		}})
		if name == "main" {
			p.Status.Phase = corev1.PodSucceeded
			if code != 0 {
				p.Status.Phase = corev1.PodFailed
			}
		}
	}
}

func waiting(name, reason string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		setStatus(p, name, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "kubelet says " + reason}})
	}
}

func evictedPod(p *corev1.Pod) {
	exited("main", 137, "Error")(p)
	p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: corev1.PodReasonTerminationByKubelet, LastTransitionTime: at(8),
	})
}

func unschedulablePod(p *corev1.Pod) {
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
		Message: "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.", LastTransitionTime: at(1),
	})
}

// podDeleted marks the pod as being deleted, as a delete from outside
// (or Wait, for a pod gone unseen) does.
func podDeleted(p *corev1.Pod) { p.DeletionTimestamp = new(at(8)) }

// nativeSidecar adds an init container with restartPolicy Always that
// ended with code, as the kubelet stops it after the containers.
func nativeSidecar(name string, code int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		always := corev1.ContainerRestartPolicyAlways
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: name, RestartPolicy: &always})
		p.Status.InitContainerStatuses = append(p.Status.InitContainerStatuses, corev1.ContainerStatus{Name: name, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Error", FinishedAt: at(9)},
		}})
	}
}

// suspendedJob is spec.suspend with the condition the Job controller
// sets for it: True while suspended, False once resumed.
func suspendedJob(suspend bool) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Spec.Suspend = new(suspend)
		c := batchv1.JobCondition{Type: batchv1.JobSuspended, Status: corev1.ConditionTrue, Reason: "JobSuspended", Message: "Job suspended", LastTransitionTime: at(1)}
		if !suspend {
			c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionFalse, "JobResumed", "Job resumed", at(30)
		} else {
			j.Status.StartTime = nil
		}
		j.Status.Conditions = append(j.Status.Conditions, c)
	}
}

// failedCreateEvent is the Job controller's event for a pod the API
// server refused with msg.
func failedCreateEvent(name, msg string, sec int) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: name, Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: "run-1", Namespace: "ns", UID: "job-uid"},
		Reason:         "FailedCreate", Type: corev1.EventTypeWarning, LastTimestamp: at(sec),
		Message: "Error creating: " + msg,
	}
}

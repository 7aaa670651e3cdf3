package jobwatch

import (
	"cmp"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Labels the Job controller sets on its pods; the legacy ones are still
// set, and are all that older pods carry.
const (
	legacyJobNameLabel       = "job-name"
	legacyControllerUIDLabel = "controller-uid"
)

// Container waiting reasons that mean the image cannot be pulled.
var imagePullReasons = map[string]bool{
	"ErrImagePull":        true,
	"ImagePullBackOff":    true,
	"InvalidImageName":    true,
	"ErrImageNeverPull":   true,
	"RegistryUnavailable": true,
	"ImageInspectError":   true,
}

const crashLoopReason = "CrashLoopBackOff"

// podJobName returns the name of the Job that controls pod: its
// controller ownerReference of kind Job, else its job-name label.
func podJobName(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "Job" {
			return ref.Name
		}
	}
	return cmp.Or(pod.Labels[batchv1.JobNameLabel], pod.Labels[legacyJobNameLabel])
}

// podOfJob reports whether pod belongs to the Job with uid, by its
// controller ownerReference or, for a pod orphaned by a deletion, by its
// controller-uid label.
func podOfJob(pod *corev1.Pod, uid types.UID) bool {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			return ref.UID == uid
		}
	}
	l := cmp.Or(pod.Labels[batchv1.ControllerUidLabel], pod.Labels[legacyControllerUIDLabel])
	return l != "" && types.UID(l) == uid
}

// sortPods orders pods oldest first, by creation time then name.
func sortPods(pods []*corev1.Pod) {
	slices.SortStableFunc(pods, func(a, b *corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
}

// newestPod returns the newest of pods sorted by sortPods, or nil.
func newestPod(sorted []*corev1.Pod) *corev1.Pod {
	if len(sorted) == 0 {
		return nil
	}
	return sorted[len(sorted)-1]
}

// runContainer returns the name of the run container of pod: name if
// given, else the pod's first container.
func runContainer(pod *corev1.Pod, name string) string {
	if name != "" || len(pod.Spec.Containers) == 0 {
		return name
	}
	return pod.Spec.Containers[0].Name
}

// containerStatus returns the status of the named container, looking at
// regular containers first, then init containers; nil if it has none.
func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// waitingWith returns the first container (init containers first, as
// they run first) waiting with a reason for which match is true.
func waitingWith(pod *corev1.Pod, match func(reason string) bool) (*corev1.ContainerStatus, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if w := list[i].State.Waiting; w != nil && match(w.Reason) {
				return &list[i], true
			}
		}
	}
	return nil, false
}

// podCondition returns the pod's condition of type typ, or nil.
func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == typ {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// unschedulable returns the PodScheduled=False condition of a pod that the
// scheduler could not place, or nil.
func unschedulable(pod *corev1.Pod) *corev1.PodCondition {
	c := podCondition(pod, corev1.PodScheduled)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != corev1.PodReasonUnschedulable {
		return nil
	}
	return c
}

// podFinished reports whether pod has ended: terminal phase, or gone.
func podFinished(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// podStarted reports whether pod has left Pending.
func podStarted(pod *corev1.Pod) bool {
	return pod.Status.Phase != "" && pod.Status.Phase != corev1.PodPending
}

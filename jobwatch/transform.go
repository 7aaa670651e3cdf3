package jobwatch

import (
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/kubeworker/kubeworker/manifest"
)

// trimmer returns the informers' TransformFunc. It replaces each Job and
// pod by a new object holding only what Classify, diagnose, podEvent, the
// log follower and Wait's checks read, so the decoded original
// (managedFields, env, volumes, images, ...) is garbage at once and the
// cache holds a couple of kilobytes per object. Of the pod template's
// labels it keeps those the selector reads and the run ID (for RunJobs;
// it shares their map). It is idempotent, as client-go requires.
func trimmer(sel labels.Selector) cache.TransformFunc {
	reqs, _ := sel.Requirements()
	keys := make([]string, 0, len(reqs)+1)
	for _, r := range reqs {
		keys = append(keys, r.Key())
	}
	keys = append(keys, manifest.LabelRunID)
	return func(obj any) (any, error) {
		switch o := obj.(type) {
		case *batchv1.Job:
			j := trimJob(o)
			j.Spec.Template.Labels = keep(o.Spec.Template.Labels, keys)
			return j, nil
		case *corev1.Pod:
			return trimPod(o), nil
		}
		return obj, nil
	}
}

// keep returns the entries of m under keys, or nil if none.
// annotationPrefix starts the labels and annotations kubeworker writes on
// a Job (its run, worker, owner replica, watch settings, cancellation):
// kept in the streams' caches, for Watcher.Jobs and Wait. The others are
// dropped, but for jobLabels.
const annotationPrefix = "kubeworker.io/"

// keepPrefixed returns the entries of m whose keys start with prefix, nil
// if none.
func keepPrefixed(m map[string]string, prefix string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[k] = v
		}
	}
	return out
}

func keep(m map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := m[k]; ok {
			if out == nil {
				out = make(map[string]string, len(keys))
			}
			out[k] = v
		}
	}
	return out
}

func trimMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:              m.Name,
		Namespace:         m.Namespace,
		UID:               m.UID,
		ResourceVersion:   m.ResourceVersion,
		CreationTimestamp: m.CreationTimestamp,
		DeletionTimestamp: m.DeletionTimestamp,
	}
}

// jobLabels are the Job's labels a Wait reads: Kueue's.
var jobLabels = []string{manifest.LabelQueueName, manifest.LabelPriorityClass}

func trimJob(j *batchv1.Job) *batchv1.Job {
	out := &batchv1.Job{ObjectMeta: trimMeta(&j.ObjectMeta)}
	out.Labels = keep(j.Labels, jobLabels)
	for k, v := range keepPrefixed(j.Labels, annotationPrefix) {
		if out.Labels == nil {
			out.Labels = map[string]string{}
		}
		out.Labels[k] = v
	}
	out.Annotations = keepPrefixed(j.Annotations, annotationPrefix)
	sp := &j.Spec
	out.Spec.BackoffLimit, out.Spec.BackoffLimitPerIndex = sp.BackoffLimit, sp.BackoffLimitPerIndex
	out.Spec.Completions, out.Spec.Parallelism = sp.Completions, sp.Parallelism
	out.Spec.ActiveDeadlineSeconds, out.Spec.ManagedBy = sp.ActiveDeadlineSeconds, sp.ManagedBy
	out.Spec.Suspend = sp.Suspend
	// podEnd needs to know only whether these policies are set.
	if sp.PodFailurePolicy != nil {
		out.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{}
	}
	if sp.SuccessPolicy != nil {
		out.Spec.SuccessPolicy = &batchv1.SuccessPolicy{}
	}
	out.Spec.Template.Labels = j.Spec.Template.Labels
	out.Spec.Template.Spec.Containers = containerNames(j.Spec.Template.Spec.Containers)
	out.Status = j.Status
	// Pods the Job controller saw end but has not counted yet stay (a few
	// UIDs, for a moment): with FailureTarget or SuccessCriteriaMet set,
	// they are the pods the end is made of (see accounted).
	if u := j.Status.UncountedTerminatedPods; u != nil && len(u.Succeeded)+len(u.Failed) == 0 {
		out.Status.UncountedTerminatedPods = nil
	}
	return out
}

// podLabels are the labels that tie a pod to its Job.
var podLabels = []string{batchv1.JobNameLabel, batchv1.ControllerUidLabel, legacyJobNameLabel, legacyControllerUIDLabel}

func trimPod(p *corev1.Pod) *corev1.Pod {
	out := &corev1.Pod{ObjectMeta: trimMeta(&p.ObjectMeta)}
	out.Labels = keep(p.Labels, podLabels)
	for _, ref := range p.OwnerReferences {
		if ref.Controller != nil && *ref.Controller {
			out.OwnerReferences = []metav1.OwnerReference{{Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller}}
		}
	}
	out.Spec.Containers = containerNames(p.Spec.Containers)
	out.Spec.InitContainers = containerNames(p.Spec.InitContainers)
	s := &p.Status
	out.Status = corev1.PodStatus{Phase: s.Phase, Reason: s.Reason, Message: s.Message, StartTime: s.StartTime}
	for _, c := range s.Conditions {
		if c.Type == corev1.PodScheduled || c.Type == corev1.DisruptionTarget {
			c.LastProbeTime, c.ObservedGeneration = metav1.Time{}, 0
			out.Status.Conditions = append(out.Status.Conditions, c)
		}
	}
	out.Status.InitContainerStatuses = trimStatuses(s.InitContainerStatuses)
	out.Status.ContainerStatuses = trimStatuses(s.ContainerStatuses)
	return out
}

func containerNames(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i, c := range cs {
		out[i] = corev1.Container{Name: c.Name, RestartPolicy: c.RestartPolicy}
	}
	return out
}

func trimStatuses(ss []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(ss) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(ss))
	for i, s := range ss {
		out[i] = corev1.ContainerStatus{
			Name:                 s.Name,
			State:                trimState(s.State),
			LastTerminationState: trimState(s.LastTerminationState),
			RestartCount:         s.RestartCount,
		}
	}
	return out
}

func trimState(s corev1.ContainerState) corev1.ContainerState {
	if t := s.Terminated; t != nil {
		c := *t
		c.ContainerID = ""
		s.Terminated = &c
	}
	return s
}

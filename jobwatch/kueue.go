package jobwatch

import (
	"maps"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// What jobwatch reads of Kueue's Workloads. Kueue is not a dependency:
// Workloads are read as unstructured objects and parsed here, field by
// field, into a kueueWorkload; a missing or odd field is left at its zero
// value, never an error. Names and reasons are those of Kueue v0.17
// (apis/kueue/v1beta2/workload_types.go, pkg/controller/constants,
// pkg/workload, pkg/controller/core/workload_controller.go).

// workloadGVRs are the versions of Kueue's Workload API that the stream
// tries, in order: v1beta2 is the storage version since Kueue v0.15;
// v1beta1 is still served (deprecated) and the only one of older Kueues.
// The fields read are the same in both.
var workloadGVRs = []schema.GroupVersionResource{
	{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "workloads"},
	{Group: "kueue.x-k8s.io", Version: "v1beta1", Resource: "workloads"},
}

// labelJobUID is the label Kueue puts on the Workload of a Job: the Job's
// UID (constants.JobUIDLabel).
const labelJobUID = "kueue.x-k8s.io/job-uid"

// Workload condition types (kueue.Workload*).
const (
	condQuotaReserved      = "QuotaReserved"
	condAdmitted           = "Admitted"
	condEvicted            = "Evicted"
	condPreempted          = "Preempted"
	condRequeued           = "Requeued"
	condFinished           = "Finished"
	condDeactivationTarget = "DeactivationTarget"
)

// Reasons Kueue gives its conditions.
const (
	// kueueInadmissible: QuotaReserved False because the LocalQueue or
	// ClusterQueue does not exist or is stopped or inactive; the message
	// says which ("LocalQueue %s doesn't exist", "ClusterQueue %s is
	// inactive", "LocalQueue %s is stopped").
	kueueInadmissible = "Inadmissible"
	// kueuePreempted: Evicted True because the Workload was preempted.
	kueuePreempted = "Preempted"
	// kueueDeactivated prefixes the Evicted reason of a deactivated
	// Workload: "Deactivated", or "DeactivatedDueTo" + the
	// DeactivationTarget's reason.
	kueueDeactivated = "Deactivated"
	// kueueMaxExecTime: the DeactivationTarget reason of a Workload that
	// ran past spec.maximumExecutionTimeSeconds.
	kueueMaxExecTime = "MaximumExecutionTimeExceeded"
)

// workloadCondition is one condition of a Workload.
type workloadCondition struct {
	Status          metav1.ConditionStatus
	Reason, Message string
	Time            time.Time // lastTransitionTime; zero if missing or odd
}

// kueueWorkload is a Workload as far as jobwatch reads it. It is what
// the Workload stream caches (the transform replaces each unstructured
// object by one), so the decoded original, pod sets and all, is garbage
// at once.
type kueueWorkload struct {
	metav1.TypeMeta
	// ObjectMeta keeps the name, namespace, UID, resourceVersion,
	// creation and deletion times, the Job UID label and the owner
	// references to Jobs.
	metav1.ObjectMeta

	QueueName  string                       // spec.queueName
	Active     bool                         // spec.active; true when missing
	Conditions map[string]workloadCondition // status.conditions by type
	// ClusterQueue is status.admission.clusterQueue: where it holds quota.
	ClusterQueue string
	// PreemptedCount is how many times the Workload was evicted with
	// reason Preempted (status.schedulingStats.evictions).
	PreemptedCount int
}

// DeepCopyObject implements runtime.Object, as the informer's store
// expects of what it holds.
func (w *kueueWorkload) DeepCopyObject() runtime.Object {
	c := *w
	w.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Conditions = maps.Clone(w.Conditions)
	return &c
}

// cond returns the condition of type t.
func (w *kueueWorkload) cond(t string) (workloadCondition, bool) {
	c, ok := w.Conditions[t]
	return c, ok
}

// is reports whether the condition of type t is True.
func (w *kueueWorkload) is(t string) bool {
	return w.Conditions[t].Status == metav1.ConditionTrue
}

// deactivated reports whether the Workload is deactivated, or about to
// be: spec.active false, or a DeactivationTarget (requeuing limit,
// maximum execution time) that Kueue turns into it.
func (w *kueueWorkload) deactivated() bool { return !w.Active || w.is(condDeactivationTarget) }

// jobUID returns the UID of the Workload's Job: its job-uid label, else
// its owner reference to a Job.
func (w *kueueWorkload) jobUID() types.UID {
	if uid := w.Labels[labelJobUID]; uid != "" {
		return types.UID(uid)
	}
	for _, ref := range w.OwnerReferences {
		if ref.Kind == "Job" {
			return ref.UID
		}
	}
	return ""
}

// trimWorkload is the Workload stream's TransformFunc: it parses an
// unstructured Workload into a kueueWorkload. Anything else passes as it
// is, so it is idempotent, as client-go requires.
func trimWorkload(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return parseWorkload(u), nil
	}
	return obj, nil
}

// parseWorkload reads what jobwatch needs of an unstructured Workload.
// It never fails: what is missing or not of the expected type is left
// at its zero value (Active at true, its default).
func parseWorkload(u *unstructured.Unstructured) *kueueWorkload {
	w := &kueueWorkload{Active: true}
	w.APIVersion, w.Kind = u.GetAPIVersion(), u.GetKind()
	w.Name, w.Namespace, w.UID, w.ResourceVersion = u.GetName(), u.GetNamespace(), u.GetUID(), u.GetResourceVersion()
	w.CreationTimestamp, w.DeletionTimestamp = u.GetCreationTimestamp(), u.GetDeletionTimestamp()
	if uid := u.GetLabels()[labelJobUID]; uid != "" {
		w.Labels = map[string]string{labelJobUID: uid}
	}
	for _, ref := range u.GetOwnerReferences() {
		if ref.Kind == "Job" {
			w.OwnerReferences = append(w.OwnerReferences, metav1.OwnerReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID})
		}
	}
	o := u.Object
	spec, _ := o["spec"].(map[string]any)
	status, _ := o["status"].(map[string]any)
	w.QueueName = str(spec, "queueName")
	if active, ok := spec["active"].(bool); ok {
		w.Active = active
	}
	conds, _ := status["conditions"].([]any)
	for _, item := range conds {
		c, _ := item.(map[string]any)
		t := str(c, "type")
		if t == "" {
			continue
		}
		if w.Conditions == nil {
			w.Conditions = map[string]workloadCondition{}
		}
		at, _ := time.Parse(time.RFC3339, str(c, "lastTransitionTime"))
		w.Conditions[t] = workloadCondition{Status: metav1.ConditionStatus(str(c, "status")), Reason: str(c, "reason"), Message: str(c, "message"), Time: at}
	}
	admission, _ := status["admission"].(map[string]any)
	w.ClusterQueue = str(admission, "clusterQueue")
	stats, _ := status["schedulingStats"].(map[string]any)
	evictions, _ := stats["evictions"].([]any)
	for _, item := range evictions {
		e, _ := item.(map[string]any)
		if str(e, "reason") == kueuePreempted {
			w.PreemptedCount += count(e["count"])
		}
	}
	return w
}

// str returns m[key] if it is a string; m may be nil.
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// count returns a JSON number as an int, 0 for anything else.
func count(v any) int {
	switch n := v.(type) {
	case int64:
		return int(max(n, 0))
	case float64:
		return int(max(n, 0))
	case int:
		return max(n, 0)
	}
	return 0
}

package jobwatch_test

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// A Job queued in Kueue for a LocalQueue that does not exist ends at
// once, NotAdmitted, with a typed Diagnosis rather than a pod start
// timeout. Fakes stand in for the cluster and Kueue: a clientset for the
// Job, a dynamic client (Options.Dynamic) for its Workload.
func ExampleWatcher_Wait_kueue() {
	labels := map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "runs", UID: "job-uid",
			Labels: map[string]string{manifest.LabelManagedBy: manifest.ManagedBy, manifest.LabelQueueName: "team-a"}},
		Spec: batchv1.JobSpec{Suspend: new(true), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		}},
	}
	// The Workload as Kueue v0.17 leaves it.
	workload := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
		"metadata": map[string]any{"name": "job-run-1-1a2b3", "namespace": "runs", "uid": "wl-uid",
			"labels": map[string]any{"kueue.x-k8s.io/job-uid": "job-uid"}},
		"spec": map[string]any{"queueName": "team-a"},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": "QuotaReserved", "status": "False", "reason": "Inadmissible", "message": "LocalQueue team-a doesn't exist",
			"lastTransitionTime": "2026-01-02T03:04:05Z",
		}}},
	}}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "workloads"}: "WorkloadList",
	}, workload)
	w := jobwatch.New(fake.NewClientset(job), jobwatch.Options{Dynamic: dyn})
	defer w.Close()
	res, err := w.Wait(context.Background(), jobwatch.JobRef{Namespace: "runs", Name: "run-1"}, jobwatch.WaitOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := res.Diagnosis
	fmt.Println(res.Outcome, res.Outcome.Fault(), d.Cause, d.LocalQueue+":", d.Message)
	fmt.Println(res.Queue.Workload, res.Queue.Events[0].Reason)
	// Output:
	// NotAdmitted Infrastructure QueueMissing team-a: LocalQueue team-a doesn't exist
	// job-run-1-1a2b3 Inadmissible
}

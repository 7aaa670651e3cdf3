package clustertest

import (
	"context"
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Labels Kueue reads on Jobs and writes on Workloads.
const (
	jobUIDLabel        = "kueue.x-k8s.io/job-uid"
	priorityClassLabel = "kueue.x-k8s.io/priority-class"
)

var workloadResource = kueueResource("workloads")

// startKueue starts the shared cluster's Kueue, failing the test if it
// cannot.
func startKueue(t *testing.T) {
	t.Helper()
	if err := cluster.StartKueue(t.Context()); err != nil {
		t.Fatalf("start Kueue: %v", err)
	}
}

// addQueue adds a queue of opts in ns and returns the LocalQueue's name.
func addQueue(t *testing.T, opts QueueOptions) {
	t.Helper()
	if err := cluster.AddQueue(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
}

// queuedJob is newJob, suspended, for queue (no label if queue is ""),
// its one pod asking for cpu.
func queuedJob(queue, cpu string, annotations map[string]string) *batchv1.Job {
	job := newJob(annotations)
	if queue != "" {
		job.Labels = map[string]string{kueueQueueLabel: queue}
	}
	job.Spec.Suspend = new(true)
	job.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}
	return job
}

// workloadOf returns the Workload of the Job with uid, or nil if there is
// none.
func workloadOf(ctx context.Context, ns string, uid types.UID) (*unstructured.Unstructured, error) {
	list, err := cluster.dyn.Resource(workloadResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: jobUIDLabel + "=" + string(uid)})
	if err != nil {
		return nil, err
	}
	switch len(list.Items) {
	case 0:
		return nil, nil
	case 1:
		return &list.Items[0], nil
	default:
		return nil, fmt.Errorf("%d Workloads for job uid %s", len(list.Items), uid)
	}
}

// waitWorkload waits until the Job with uid has a Workload for which ok is
// true, and returns it.
func waitWorkload(t *testing.T, ns string, uid types.UID, what string, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	var wl *unstructured.Unstructured
	eventually(t, fmt.Sprintf("the Workload of job uid %s to be %s", uid, what), func(ctx context.Context) (bool, error) {
		var err error
		if wl, err = workloadOf(ctx, ns, uid); err != nil || wl == nil {
			return false, err
		}
		if ok(wl) {
			return true, nil
		}
		return false, fmt.Errorf("conditions %v", wlConditions(wl))
	})
	return wl
}

// wlCondition returns the Workload's condition of type typ, or nil.
func wlCondition(wl *unstructured.Unstructured, typ string) map[string]any {
	for _, c := range wlConditions(wl) {
		if c["type"] == typ {
			return c
		}
	}
	return nil
}

func wlConditions(wl *unstructured.Unstructured) []map[string]any {
	conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	var out []map[string]any
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// hasCondition returns a test that the Workload has condition typ with
// status (and reason, if not empty).
func hasCondition(typ, status, reason string) func(*unstructured.Unstructured) bool {
	return func(wl *unstructured.Unstructured) bool {
		c := wlCondition(wl, typ)
		return c != nil && c["status"] == status && (reason == "" || c["reason"] == reason)
	}
}

// checkCondition fails the test unless the Workload's condition typ has
// status, reason and, if message is not empty, message.
func checkCondition(t *testing.T, wl *unstructured.Unstructured, typ, status, reason, message string) {
	t.Helper()
	c := wlCondition(wl, typ)
	if c == nil {
		t.Errorf("Workload %s has no condition %s: %v", wl.GetName(), typ, wlConditions(wl))
		return
	}
	if c["status"] != status || c["reason"] != reason || (message != "" && c["message"] != message) {
		t.Errorf("Workload %s condition %s = %s/%s %q, want %s/%s %q", wl.GetName(), typ, c["status"], c["reason"], c["message"], status, reason, message)
	}
}

// logWorkload records what Kueue wrote on a Workload, for the reader of
// go test -v.
func logWorkload(t *testing.T, when string, wl *unstructured.Unstructured) {
	t.Helper()
	admission, _, _ := unstructured.NestedMap(wl.Object, "status", "admission")
	t.Logf("%s: Workload %s labels=%v annotations=%v admission=%v", when, wl.GetName(), wl.GetLabels(), wl.GetAnnotations(), admission)
	for _, c := range wlConditions(wl) {
		t.Logf("  condition %s=%s reason=%s message=%q", c["type"], c["status"], c["reason"], c["message"])
	}
}

// waitSuspended waits until the Job's spec.suspend is want.
func waitSuspended(t *testing.T, client kubernetes.Interface, ns, name string, want bool) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	eventually(t, fmt.Sprintf("job %s/%s suspend=%t", ns, name, want), func(ctx context.Context) (bool, error) {
		var err error
		if job, err = client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		return (job.Spec.Suspend != nil && *job.Spec.Suspend) == want, nil
	})
	return job
}

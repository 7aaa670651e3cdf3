package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

func TestKueueAdmitsAQueuedJobThatThenRuns(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	job := createJob(t, client, ns, queuedJob("queue", "1", nil))
	wl := waitWorkload(t, ns, job.UID, "Admitted", hasCondition("Admitted", "True", ""))
	logWorkload(t, "admitted", wl)
	checkCondition(t, wl, "QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue "+ns)
	checkCondition(t, wl, "Admitted", "True", "Admitted", "The workload is admitted")
	if cq, _, _ := unstructured.NestedString(wl.Object, "status", "admission", "clusterQueue"); cq != ns {
		t.Errorf("status.admission.clusterQueue = %q, want %q", cq, ns)
	}
	if q, _, _ := unstructured.NestedString(wl.Object, "spec", "queueName"); q != "queue" {
		t.Errorf("spec.queueName = %q, want queue", q)
	}
	if owners := wl.GetOwnerReferences(); len(owners) != 1 || owners[0].UID != job.UID || owners[0].Kind != "Job" {
		t.Errorf("Workload owners = %v, want the Job", owners)
	}
	done := waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
	t.Logf("job after admission: suspend=%v labels=%v annotations=%v template labels=%v annotations=%v nodeSelector=%v",
		*done.Spec.Suspend, done.Labels, done.Annotations, done.Spec.Template.Labels, done.Spec.Template.Annotations, done.Spec.Template.Spec.NodeSelector)
	if *done.Spec.Suspend {
		t.Error("the completed Job is still suspended")
	}
	wl = waitWorkload(t, ns, job.UID, "Finished", hasCondition("Finished", "True", ""))
	logWorkload(t, "finished", wl)
	checkCondition(t, wl, "Finished", "True", "Succeeded", "Reached expected number of succeeded pods")

	// Read through v1beta1, Kueue's conversion webhook answers.
	v1beta1 := workloadResource
	v1beta1.Version = "v1beta1"
	old, err := cluster.dyn.Resource(v1beta1).Namespace(ns).Get(t.Context(), wl.GetName(), metav1.GetOptions{})
	if err != nil || old.GetAPIVersion() != "kueue.x-k8s.io/v1beta1" {
		t.Errorf("get the Workload as v1beta1: %v (apiVersion %q)", err, old.GetAPIVersion())
	}
}

func TestKueueFinishesTheWorkloadOfAFailedJob(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	job := createJob(t, client, ns, queuedJob("queue", "1", map[string]string{AnnotationExitCode: "3"}))
	waitJobCondition(t, client, ns, job.Name, batchv1.JobFailed)
	wl := waitWorkload(t, ns, job.UID, "Finished", hasCondition("Finished", "True", ""))
	logWorkload(t, "failed", wl)
	checkCondition(t, wl, "Finished", "True", "Failed", "Job has reached the specified backoff limit")
}

func TestKueueHoldsASecondJobUntilTheFirstEnds(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	first := createJob(t, client, ns, queuedJob("queue", "1", map[string]string{AnnotationDelay: "1h"}))
	waitWorkload(t, ns, first.UID, "Admitted", hasCondition("Admitted", "True", ""))
	pod := waitJobPod(t, client, ns, first.Name, "Running", isRunning)
	second := createJob(t, client, ns, queuedJob("queue", "1", nil))
	wl := waitWorkload(t, ns, second.UID, "pending", hasCondition("QuotaReserved", "False", ""))
	logWorkload(t, "pending", wl)
	checkCondition(t, wl, "QuotaReserved", "False", "Pending",
		"couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default-flavor, 1 more needed")
	if wlCondition(wl, "Admitted") != nil && wlCondition(wl, "Admitted")["status"] == "True" {
		t.Error("the second Workload is admitted while the first runs")
	}
	if j := waitSuspended(t, client, ns, second.Name, true); j.Status.Active != 0 {
		t.Errorf("the waiting Job has %d active pods", j.Status.Active)
	}
	endPod(t, client, ns, pod.Name)
	waitJobCondition(t, client, ns, first.Name, batchv1.JobComplete)
	wl = waitWorkload(t, ns, second.UID, "Admitted", hasCondition("Admitted", "True", ""))
	logWorkload(t, "admitted after the first ended", wl)
	waitJobCondition(t, client, ns, second.Name, batchv1.JobComplete)
}

func TestKueueLeavesJobsWithoutTheQueueLabelAlone(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	// A LocalQueue named "default" would take unlabelled Jobs under
	// Kueue's LocalQueueDefaulting, were they sent to its webhook.
	addQueue(t, QueueOptions{Namespace: ns, LocalQueue: "default", ClusterQueue: ns})
	suspended := createJob(t, client, ns, queuedJob("", "1", nil))
	running := createJob(t, client, ns, queuedJob("", "1", nil))
	if _, err := client.BatchV1().Jobs(ns).Patch(t.Context(), running.Name, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// Quota is 1 cpu: had Kueue taken them, only one could run.
	running2 := createJob(t, client, ns, newJob(nil))
	waitJobCondition(t, client, ns, running.Name, batchv1.JobComplete)
	waitJobCondition(t, client, ns, running2.Name, batchv1.JobComplete)
	wls, err := cluster.dyn.Resource(workloadResource).Namespace(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(wls.Items) != 0 {
		t.Errorf("%d Workloads for Jobs without the queue label", len(wls.Items))
	}
	for _, name := range []string{suspended.Name, running.Name, running2.Name} {
		j, err := client.BatchV1().Jobs(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k := range j.Labels {
			if strings.Contains(k, "kueue") {
				t.Errorf("job %s got label %s", name, k)
			}
		}
		for k := range j.Annotations {
			if strings.Contains(k, "kueue") {
				t.Errorf("job %s got annotation %s", name, k)
			}
		}
		if name == suspended.Name && (j.Spec.Suspend == nil || !*j.Spec.Suspend) {
			t.Errorf("the suspended Job without the queue label was unsuspended")
		}
	}
}

func TestKueueKeepsAJobForAMissingLocalQueueSuspended(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, queuedJob("no-such-queue", "1", nil))
	wl := waitWorkload(t, ns, job.UID, "inadmissible", hasCondition("QuotaReserved", "False", ""))
	logWorkload(t, "LocalQueue missing", wl)
	checkCondition(t, wl, "QuotaReserved", "False", "Inadmissible", "LocalQueue no-such-queue doesn't exist")
	if j := waitSuspended(t, client, ns, job.Name, true); j.Status.Active != 0 {
		t.Errorf("the Job has %d active pods", j.Status.Active)
	}
}

func TestKueuePreemptsALowerPriorityJob(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1", Preemption: "LowerPriority"})
	low, high := ns+"-low", ns+"-high"
	for name, value := range map[string]int32{low: 100, high: 1000} {
		if err := cluster.AddWorkloadPriorityClass(t.Context(), name, value); err != nil {
			t.Fatal(err)
		}
	}
	lowJob := queuedJob("queue", "1", map[string]string{AnnotationDelay: "1h"})
	lowJob.Labels[priorityClassLabel] = low
	lowJob = createJob(t, client, ns, lowJob)
	wl := waitWorkload(t, ns, lowJob.UID, "Admitted", hasCondition("Admitted", "True", ""))
	t.Logf("low-priority Workload spec: priority=%v priorityClassRef=%v", wl.Object["spec"].(map[string]any)["priority"], wl.Object["spec"].(map[string]any)["priorityClassRef"])
	waitJobPod(t, client, ns, lowJob.Name, "Running", isRunning)

	highJob := queuedJob("queue", "1", nil)
	highJob.Labels[priorityClassLabel] = high
	highJob = createJob(t, client, ns, highJob)
	wl = waitWorkload(t, ns, lowJob.UID, "Evicted", hasCondition("Evicted", "True", ""))
	logWorkload(t, "preempted", wl)
	checkCondition(t, wl, "Evicted", "True", "Preempted", "")
	checkCondition(t, wl, "Preempted", "True", "InClusterQueue", "")
	if msg, _ := wlCondition(wl, "Evicted")["message"].(string); !strings.HasPrefix(msg, "Preempted to accommodate a workload (UID: ") ||
		!strings.Contains(msg, ", JobUID: "+string(highJob.UID)+") due to prioritization in the ClusterQueue") {
		t.Errorf("Evicted message %q does not name the preemptor's JobUID %s", msg, highJob.UID)
	}
	suspended := waitSuspended(t, client, ns, lowJob.Name, true)
	t.Logf("preempted job: suspend=true conditions=%v", suspended.Status.Conditions)
	wl = waitWorkload(t, ns, lowJob.UID, "without quota", hasCondition("QuotaReserved", "False", ""))
	logWorkload(t, "preempted, quota released", wl)
	wlHigh := waitWorkload(t, ns, highJob.UID, "Admitted", hasCondition("Admitted", "True", ""))
	logWorkload(t, "the preemptor admitted", wlHigh)
	waitJobCondition(t, client, ns, highJob.Name, batchv1.JobComplete)

	wl = waitWorkload(t, ns, lowJob.UID, "admitted again", hasCondition("Admitted", "True", ""))
	logWorkload(t, "readmitted after the preemptor ended", wl)
	pod := waitJobPod(t, client, ns, lowJob.Name, "Running", isRunning)
	endPod(t, client, ns, pod.Name)
	waitJobCondition(t, client, ns, lowJob.Name, batchv1.JobComplete)
}

func TestKueueEvictsADeactivatedWorkload(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	job := createJob(t, client, ns, queuedJob("queue", "1", map[string]string{AnnotationDelay: "1h"}))
	wl := waitWorkload(t, ns, job.UID, "Admitted", hasCondition("Admitted", "True", ""))
	waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	setActive := func(active bool) {
		patch := fmt.Appendf(nil, `{"spec":{"active":%t}}`, active)
		if _, err := cluster.dyn.Resource(workloadResource).Namespace(ns).Patch(t.Context(), wl.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setActive(false)
	wl = waitWorkload(t, ns, job.UID, "Evicted", hasCondition("Evicted", "True", ""))
	logWorkload(t, "deactivated", wl)
	checkCondition(t, wl, "Evicted", "True", "Deactivated", "The workload is deactivated")
	waitSuspended(t, client, ns, job.Name, true)
	wl = waitWorkload(t, ns, job.UID, "without quota", hasCondition("QuotaReserved", "False", ""))
	logWorkload(t, "deactivated, quota released", wl)
	checkCondition(t, wl, "QuotaReserved", "False", "Pending", "The workload is deactivated")
	checkCondition(t, wl, "Admitted", "False", "NoReservation", "The workload has no reservation")
	checkCondition(t, wl, "Requeued", "False", "Deactivated", "The workload is deactivated")

	setActive(true)
	wl = waitWorkload(t, ns, job.UID, "admitted again", hasCondition("Admitted", "True", ""))
	logWorkload(t, "reactivated", wl)
	checkCondition(t, wl, "Requeued", "True", "Reactivated", "The workload was reactivated")
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	endPod(t, client, ns, pod.Name)
	waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
}

// endPod ends a pod held Running by AnnotationDelay.
func endPod(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0s"}}}`, AnnotationDelay)
	if _, err := client.CoreV1().Pods(ns).Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("end pod %s: %v", name, err)
	}
}

func TestKueueVisibilityAPIServesPendingWorkloadsInOrder(t *testing.T) {
	t.Parallel()
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	// The first runs, the other three wait, in the order of creation
	// (Kueue orders equal priorities by creation time, whole seconds: each
	// is made in a later second).
	first := createJob(t, client, ns, queuedJob("queue", "1", map[string]string{AnnotationDelay: "1h"}))
	waitWorkload(t, ns, first.UID, "Admitted", hasCondition("Admitted", "True", ""))
	var want []string
	for range 3 {
		job := createJob(t, client, ns, queuedJob("queue", "1", map[string]string{AnnotationDelay: "1h"}))
		wl := waitWorkload(t, ns, job.UID, "Pending", hasCondition("QuotaReserved", "False", "Pending"))
		want = append(want, wl.GetName())
		time.Sleep(time.Until(wl.GetCreationTimestamp().Add(time.Second)))
	}
	for _, version := range kueueVisibilityVersions {
		path := fmt.Sprintf("/apis/%s/%s/namespaces/%s/localqueues/queue/pendingworkloads", kueueVisibilityGroup, version, ns)
		var got []string
		var last string
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			data, err := client.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
			if err != nil {
				if ctx.Err() == nil {
					last = err.Error()
				}
				return false, nil
			}
			var summary struct {
				Items []struct {
					Metadata             metav1.ObjectMeta `json:"metadata"`
					PositionInLocalQueue int32             `json:"positionInLocalQueue"`
				} `json:"items"`
			}
			if err := json.Unmarshal(data, &summary); err != nil {
				return false, err
			}
			got, last = nil, string(data)
			for i, it := range summary.Items {
				if int(it.PositionInLocalQueue) != i {
					return false, nil
				}
				got = append(got, it.Metadata.Name)
			}
			return slices.Equal(got, want), nil
		})
		if err != nil {
			t.Fatalf("GET %s: %v; want the pending workloads %v, last answer: %s", path, err, want, last)
		}
	}
}

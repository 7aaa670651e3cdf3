package jobwatch

import (
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
)

// Builders of Kueue Workloads, as Kueue v0.17 writes them, for the tests
// of following Kueue through the fake dynamic client.

const testQueue = "team-a"

// queuedJob is testJob labelled for the LocalQueue testQueue.
func queuedJob(mods ...func(*batchv1.Job)) *batchv1.Job {
	return testJob(append([]func(*batchv1.Job){func(j *batchv1.Job) {
		j.Labels[manifest.LabelQueueName] = testQueue
	}}, mods...)...)
}

// testWorkload is the Workload of queuedJob, with no condition yet.
func testWorkload(mods ...func(*unstructured.Unstructured)) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kueue.x-k8s.io/v1beta2",
		"kind":       "Workload",
		"metadata": map[string]any{
			"name": "job-run-1-1a2b3", "namespace": "ns", "uid": "wl-uid", "resourceVersion": "1",
			"creationTimestamp": at(0).UTC().Format(time.RFC3339),
			"labels":            map[string]any{labelJobUID: "job-uid"},
			"ownerReferences": []any{map[string]any{
				"apiVersion": "batch/v1", "kind": "Job", "name": "run-1", "uid": "job-uid", "controller": true, "blockOwnerDeletion": true,
			}},
		},
		"spec": map[string]any{
			"queueName": testQueue,
			"active":    true,
			"podSets":   []any{map[string]any{"name": "main", "count": int64(1)}},
		},
	}}
	for _, m := range mods {
		m(u)
	}
	return u
}

// wlCond sets the condition of type typ, as apimeta.SetStatusCondition
// does.
func wlCond(typ string, status metav1.ConditionStatus, reason, message string, sec int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		c := map[string]any{"type": typ, "status": string(status), "reason": reason, "message": message,
			"lastTransitionTime": at(sec).UTC().Format(time.RFC3339)}
		replaced := false
		for i, old := range conds {
			if old.(map[string]any)["type"] == typ {
				conds[i], replaced = c, true
			}
		}
		if !replaced {
			conds = append(conds, c)
		}
		_ = unstructured.SetNestedSlice(u.Object, conds, "status", "conditions")
	}
}

// pendingWL: the scheduler found no quota.
func pendingWL(sec int) func(*unstructured.Unstructured) {
	return wlCond(condQuotaReserved, metav1.ConditionFalse, "Pending",
		"couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default, 1 more needed", sec)
}

// admittedWL: quota reserved in ClusterQueue cq, and admitted.
func admittedWL(sec int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		wlCond(condQuotaReserved, metav1.ConditionTrue, "QuotaReserved", "Quota reserved in ClusterQueue cq", sec)(u)
		wlCond(condAdmitted, metav1.ConditionTrue, "Admitted", "The workload is admitted", sec)(u)
		_ = unstructured.SetNestedField(u.Object, "cq", "status", "admission", "clusterQueue")
	}
}

const preemptionMessage = "Preempted to accommodate a workload (UID: hi-uid, JobUID: hi-job) due to prioritization in the ClusterQueue; preemptor path: /cq; preemptee path: /cq"

// preemptedWL: evicted by a preemption in the ClusterQueue; Kueue has
// not yet released the quota.
func preemptedWL(sec int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		wlCond(condEvicted, metav1.ConditionTrue, "Preempted", preemptionMessage, sec)(u)
		wlCond(condPreempted, metav1.ConditionTrue, "InClusterQueue", preemptionMessage, sec)(u)
	}
}

// requeuedWL: the Job is suspended, the quota released, the Workload
// back in its queue.
func requeuedWL(sec int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		wlCond(condRequeued, metav1.ConditionTrue, "Preempted", preemptionMessage, sec)(u)
		wlCond(condQuotaReserved, metav1.ConditionFalse, "Pending", preemptionMessage, sec)(u)
		wlCond(condAdmitted, metav1.ConditionFalse, "NoReservation", "The workload has no reservation", sec)(u)
		unstructured.RemoveNestedField(u.Object, "status", "admission")
	}
}

// readmittedWL: admitted again after a preemption.
func readmittedWL(sec int) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		admittedWL(sec)(u)
		wlCond(condEvicted, metav1.ConditionFalse, "QuotaReserved", "Previously: "+preemptionMessage, sec)(u)
		wlCond(condPreempted, metav1.ConditionFalse, "QuotaReserved", "Previously: "+preemptionMessage, sec)(u)
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"reason": "Preempted", "underlyingCause": "", "count": int64(1)}},
			"status", "schedulingStats", "evictions")
	}
}

// kueueFake is a Watcher over fake clients (a clientset and a dynamic
// client that serves Kueue's Workload API), a fake clock and a Recorder.
type kueueFake struct {
	w   *Watcher
	cs  *fake.Clientset
	dyn *dynfake.FakeDynamicClient
	clk *testingclock.FakeClock
	rec *kueueTally
}

func newKueueFake(t *testing.T, objs []runtime.Object, workloads ...runtime.Object) *kueueFake {
	t.Helper()
	f := &kueueFake{cs: fake.NewClientset(objs...), clk: testingclock.NewFakeClock(t0), rec: &kueueTally{}}
	f.dyn = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		workloadGVRs[0]: "WorkloadList", workloadGVRs[1]: "WorkloadList",
	}, workloads...)
	f.w = New(f.cs, Options{Clock: f.clk, Dynamic: f.dyn, Metrics: f.rec})
	t.Cleanup(f.w.Close)
	return f
}

// setWorkload updates the Workload in the fake API.
func (f *kueueFake) setWorkload(t *testing.T, u *unstructured.Unstructured) {
	t.Helper()
	if _, err := f.dyn.Resource(workloadGVRs[0]).Namespace("ns").Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// seen waits until the Workload stream of "ns" has cached the Workload
// of the Job with a condition of type typ and status.
func (f *kueueFake) seen(t *testing.T, typ string, status metav1.ConditionStatus) {
	t.Helper()
	eventually(t, typ+" "+string(status)+" in the Workload cache", func() bool {
		f.w.mu.Lock()
		s := f.w.streams["ns"]
		f.w.mu.Unlock()
		if s == nil {
			return false
		}
		s.mu.Lock()
		ws := s.wls
		s.mu.Unlock()
		wl := ws.of("job-uid")
		return wl != nil && wl.Conditions[typ].Status == status
	})
}

// queued waits until a Wait counts its run as queued (its queue timeout
// is armed then), and a little more, for its pod start timeout to pause.
func (f *kueueFake) queued(t *testing.T) {
	t.Helper()
	eventually(t, "the run queued", func() bool { f.rec.mu.Lock(); defer f.rec.mu.Unlock(); return f.rec.queuedNow == 1 })
	time.Sleep(20 * time.Millisecond)
}

// kueueTally keeps the Kueue facts a Watcher records.
type kueueTally struct {
	metrics.Discard
	mu                   sync.Mutex
	waits                []time.Duration
	requeuedWaits        int
	preempted, requeued  int
	queuedNow, queuedMax int
}

func (k *kueueTally) AdmissionWait(d time.Duration, requeued bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.waits = append(k.waits, d)
	if requeued {
		k.requeuedWaits++
	}
}

func (k *kueueTally) Preempted() { k.mu.Lock(); k.preempted++; k.mu.Unlock() }
func (k *kueueTally) Requeued()  { k.mu.Lock(); k.requeued++; k.mu.Unlock() }

func (k *kueueTally) QueueWaitStarted() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.queuedNow++
	k.queuedMax = max(k.queuedMax, k.queuedNow)
}

func (k *kueueTally) QueueWaitEnded() { k.mu.Lock(); k.queuedNow--; k.mu.Unlock() }

// kueueReasons returns the Reasons of the events of Kueue's in events.
func kueueReasons(events []Event) []string {
	var out []string
	for _, e := range events {
		if e.Workload != "" {
			out = append(out, e.Reason)
		}
	}
	return out
}

// resumedJob is queuedJob resumed at sec, as Kueue resumes it once
// admitted.
func resumedJob(sec int, mods ...func(*batchv1.Job)) *batchv1.Job {
	return queuedJob(append([]func(*batchv1.Job){func(j *batchv1.Job) {
		j.Spec.Suspend = new(false)
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{
			Type: batchv1.JobSuspended, Status: corev1.ConditionFalse, Reason: "JobResumed", Message: "Job resumed", LastTransitionTime: at(sec),
		})
		j.Status.StartTime = new(at(sec))
	}}, mods...)...)
}

// suspendedAgain is a Job that ran and that Kueue suspended at sec.
func suspendedAgain(sec int) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Spec.Suspend = new(true)
		j.Status.StartTime = nil
		j.Status.Conditions = []batchv1.JobCondition{{
			Type: batchv1.JobSuspended, Status: corev1.ConditionTrue, Reason: "JobSuspended", Message: "Job suspended", LastTransitionTime: at(sec),
		}}
	}
}

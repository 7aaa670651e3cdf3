package jobwatch

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// createPod creates pod in the fake clientset.
func createPod(t *testing.T, f *kueueFake, pod *corev1.Pod) {
	t.Helper()
	if _, err := f.cs.CoreV1().Pods(pod.Namespace).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// These tests drive Wait over Kueue sequences: the Job and its pods
// through the fake clientset, its Workload through the fake dynamic
// client, as Kueue v0.17 writes them; end-to-end tests against the real
// Kueue controller are in e2e_kueue_test.go.

func TestWaitFollowsAQueuedJobThroughItsAdmissionToItsEnd(t *testing.T) {
	f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
	rec := &recorder{}
	ch := startWait(f.w, ref1, WaitOptions{PodStartTimeout: 5 * time.Second, QueueTimeout: time.Hour, Events: rec})
	eventually(t, "the WaitingForQuota event", func() bool { return slices.Contains(kueueReasons(rec.all()), ReasonWaitingForQuota) })
	f.clk.Step(10 * time.Minute) // neither the pod start timeout nor the queue timeout passes
	f.setWorkload(t, testWorkload(pendingWL(1), admittedWL(7)))
	eventually(t, "the Admitted event", func() bool { return slices.Contains(kueueReasons(rec.all()), ReasonAdmitted) })
	updateJob(t, f.cs, resumedJob(8))
	createPod(t, f, testPod("p1", 8, running, exited("main", 0, "Completed")))
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Succeeded || c.res.Pod != "p1" {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	q := c.res.Queue
	if q == nil || q.LocalQueue != testQueue || q.ClusterQueue != "cq" || q.Workload != "job-run-1-1a2b3" ||
		!q.QueuedAt.Equal(at(0).Time) || !q.AdmittedAt.Equal(at(7).Time) || q.Waited != 7*time.Second || q.Preemptions != 0 {
		t.Fatalf("Queue %+v", q)
	}
	if got, want := kueueReasons(q.Events), []string{ReasonWaitingForQuota, ReasonAdmitted}; !slices.Equal(got, want) {
		t.Errorf("Kueue's events %v, want %v", got, want)
	}
	if a := q.Events[1]; a.ClusterQueue != "cq" || a.Message != "Quota reserved in ClusterQueue cq" || !a.Time.Equal(at(7).Time) {
		t.Errorf("the Admitted event %+v", a)
	}
	if got := kueueReasons(rec.all()); !slices.Equal(got, kueueReasons(q.Events)) {
		t.Errorf("the sink got Kueue's events %v, the Result %v", got, kueueReasons(q.Events))
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if !slices.Equal(f.rec.waits, []time.Duration{7 * time.Second}) || f.rec.requeuedWaits != 0 || f.rec.queuedNow != 0 || f.rec.queuedMax != 1 {
		t.Errorf("metrics %+v", f.rec)
	}
}

func TestWaitFollowsAPreemptedJobThroughItsRequeueToItsEnd(t *testing.T) {
	f := newKueueFake(t, []runtime.Object{resumedJob(5), testPod("p1", 5, running)}, testWorkload(pendingWL(1), admittedWL(5)))
	rec := &recorder{}
	ch := startWait(f.w, ref1, WaitOptions{PodStartTimeout: 5 * time.Second, QueueTimeout: time.Hour, Events: rec})
	eventually(t, "the Running event", func() bool { return len(rec.all()) >= 3 }) // Resumed, Admitted, Running

	// Kueue preempts the Workload, suspends the Job (whose controller
	// deletes the pod), releases the quota and requeues it.
	f.setWorkload(t, testWorkload(pendingWL(1), admittedWL(5), preemptedWL(10)))
	f.seen(t, condEvicted, metav1.ConditionTrue)
	updateJob(t, f.cs, queuedJob(suspendedAgain(11)))
	if err := f.cs.CoreV1().Pods("ns").Delete(t.Context(), "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.setWorkload(t, testWorkload(pendingWL(1), admittedWL(5), preemptedWL(10), requeuedWL(12)))
	eventually(t, "the Requeued event", func() bool { return slices.Contains(kueueReasons(rec.all()), ReasonRequeued) })
	f.clk.Step(10 * time.Minute) // the pod start timeout waits for the resume
	time.Sleep(50 * time.Millisecond)
	select {
	case c := <-ch:
		t.Fatalf("Wait ended while the Job was requeued: %+v, %v", c.res, c.err)
	default:
	}

	// Admitted again, resumed, and its new pod succeeds.
	f.setWorkload(t, testWorkload(pendingWL(1), preemptedWL(10), requeuedWL(12), readmittedWL(20)))
	f.seen(t, condEvicted, metav1.ConditionFalse)
	updateJob(t, f.cs, resumedJob(21))
	createPod(t, f, testPod("p2", 21, running, exited("main", 0, "Completed")))
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Succeeded || c.res.Pod != "p2" || c.res.ExitCode != 0 {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	q := c.res.Queue
	if q.Preemptions != 1 || q.Requeues != 1 || len(q.Evictions) != 1 || !q.AdmittedAt.Equal(at(20).Time) || q.ClusterQueue != "cq" {
		t.Fatalf("Queue %+v", q)
	}
	if e := q.Evictions[0]; e.Reason != "Preempted" || e.Preemption != "InClusterQueue" || e.Message != preemptionMessage || !e.Time.Equal(at(10).Time) {
		t.Errorf("eviction %+v", e)
	}
	if q.Waited != 15*time.Second { // from the creation to the admission at 5, then from the eviction at 10 to 20
		t.Errorf("Waited %v, want 15s", q.Waited)
	}
	want := []string{ReasonAdmitted, ReasonPreempted, ReasonRequeued, ReasonAdmitted}
	if got := kueueReasons(q.Events); !slices.Equal(got, want) {
		t.Errorf("Kueue's events %v, want %v", got, want)
	}
	if p := q.Events[1]; p.KueueReason != "InClusterQueue" || p.Message != preemptionMessage {
		t.Errorf("the Preempted event %+v", p)
	}
	// In the sink, Kueue's events and the Job's and pods' in one chain.
	all := rec.all()
	for i := 1; i < len(all); i++ {
		if all[i].PrevID != all[i-1].ID {
			t.Errorf("event %d (%s) does not link to the one before", i, all[i].Reason)
		}
	}
	if got := kueueReasons(all); !slices.Equal(got, want) {
		t.Errorf("the sink got Kueue's events %v, want %v", got, want)
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	if f.rec.preempted != 1 || f.rec.requeued != 1 || f.rec.requeuedWaits != 1 || len(f.rec.waits) != 1 || f.rec.queuedNow != 0 {
		t.Errorf("metrics %+v", f.rec)
	}
}

func TestWaitEndsAtOnceWhenTheLocalQueueDoesNotExist(t *testing.T) {
	missing := wlCond(condQuotaReserved, metav1.ConditionFalse, "Inadmissible", "LocalQueue team-a doesn't exist", 1)
	f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(missing))
	res, err := f.w.Wait(t.Context(), ref1, WaitOptions{QueueTimeout: time.Hour})
	if err != nil || res.Outcome != NotAdmitted || res.Outcome.Fault() != FaultInfrastructure {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
	d := res.Diagnosis
	if d == nil || d.Cause != CauseQueueMissing || d.LocalQueue != testQueue || d.Reason != "Inadmissible" || d.Message != "LocalQueue team-a doesn't exist" {
		t.Errorf("Diagnosis %+v", d)
	}
	if got := kueueReasons(res.Queue.Events); !slices.Equal(got, []string{ReasonInadmissible}) {
		t.Errorf("Kueue's events %v", got)
	}
}

func TestWaitEndsNotAdmittedAtTheQueueTimeout(t *testing.T) {
	f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
	ch := startWait(f.w, ref1, WaitOptions{QueueTimeout: time.Minute})
	f.queued(t)
	stepWhen(t, f.w, f.clk, 1, time.Minute) // the pod start timeout is paused: the queue timeout alone
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != NotAdmitted || !c.res.FinishedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if d := c.res.Diagnosis; d == nil || d.Cause != CauseQuotaWait || d.LocalQueue != testQueue || d.Reason != "Pending" ||
		d.Message != "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor default, 1 more needed" {
		t.Errorf("Diagnosis %+v", d)
	}
	if q := c.res.Queue; q.Waited != time.Minute || !q.AdmittedAt.IsZero() {
		t.Errorf("Queue %+v", q)
	}
}

func TestTheQueueTimeoutStartsAfreshAtAnEviction(t *testing.T) {
	f := newKueueFake(t, []runtime.Object{resumedJob(5), testPod("p1", 5, running)}, testWorkload(admittedWL(5)))
	ch := startWait(f.w, ref1, WaitOptions{QueueTimeout: time.Minute})
	f.seen(t, condAdmitted, metav1.ConditionTrue)
	f.clk.Step(time.Hour) // admitted: no queue timeout runs
	f.setWorkload(t, testWorkload(admittedWL(5), preemptedWL(10)))
	f.queued(t)
	stepWhen(t, f.w, f.clk, 1, time.Minute-time.Second)
	time.Sleep(50 * time.Millisecond)
	select {
	case c := <-ch:
		t.Fatalf("Wait ended before the queue timeout: %+v, %v", c.res, c.err)
	default:
	}
	f.clk.Step(time.Second)
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != NotAdmitted || c.res.Queue.Preemptions != 1 {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestADeactivatedWorkloadEndsTheWait(t *testing.T) {
	tests := []struct {
		name            string
		workload        func(*unstructured.Unstructured)
		outcome         Outcome
		reason, message string
	}{
		{"past its requeuing limit", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, false, "spec", "active")
			wlCond(condEvicted, metav1.ConditionTrue, "DeactivatedDueToRequeuingLimitExceeded",
				"The workload is deactivated due to exceeding the maximum number of re-queuing retries", 30)(u)
		}, Deactivated, "DeactivatedDueToRequeuingLimitExceeded", "The workload is deactivated due to exceeding the maximum number of re-queuing retries"},
		{"by someone", func(u *unstructured.Unstructured) { _ = unstructured.SetNestedField(u.Object, false, "spec", "active") },
			Deactivated, "Deactivated", "The workload is deactivated"},
		{"past its maximum execution time", func(u *unstructured.Unstructured) {
			wlCond(condDeactivationTarget, metav1.ConditionTrue, "MaximumExecutionTimeExceeded", "exceeding the maximum execution time", 30)(u)
		}, DeadlineExceeded, "MaximumExecutionTimeExceeded", "exceeding the maximum execution time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newKueueFake(t, []runtime.Object{resumedJob(5), testPod("p1", 5, running)}, testWorkload(admittedWL(5)))
			ch := startWait(f.w, ref1, WaitOptions{})
			f.seen(t, condAdmitted, metav1.ConditionTrue)
			f.setWorkload(t, testWorkload(admittedWL(5), tt.workload))
			c := await(t, ch)
			if c.err != nil || c.res.Outcome != tt.outcome || c.res.Reason != tt.reason || c.res.Message != tt.message {
				t.Fatalf("Wait = %+v, %v", c.res, c.err)
			}
		})
	}
	if Deactivated.Fault() != FaultInfrastructure || Deactivated.String() != "Deactivated" || NotAdmitted.String() != "NotAdmitted" {
		t.Error("the new Outcomes' names or faults")
	}
}

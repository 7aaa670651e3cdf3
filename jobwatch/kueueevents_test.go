package jobwatch

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestKueueEventsDescribeEachStateOfAWorkload(t *testing.T) {
	podsReadyTimeout := func(u *unstructured.Unstructured) {
		wlCond(condEvicted, metav1.ConditionTrue, "PodsReadyTimeout", "Exceeded the PodsReady timeout ns/job-run-1-1a2b3", 10)(u)
	}
	backoff := func(status metav1.ConditionStatus, reason string, sec int) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) {
			wlCond(condRequeued, status, reason, "Exceeded the PodsReady timeout ns/job-run-1-1a2b3", sec)(u)
			wlCond(condQuotaReserved, metav1.ConditionFalse, "Pending", "Exceeded the PodsReady timeout ns/job-run-1-1a2b3", 11)(u)
			wlCond(condAdmitted, metav1.ConditionFalse, "NoReservation", "The workload has no reservation", 11)(u)
		}
	}
	tests := []struct {
		name     string
		workload *unstructured.Unstructured
		want     []string // Reason/KueueReason
	}{
		{"created, not looked at yet", testWorkload(), nil},
		{"waiting for quota", testWorkload(pendingWL(1)), []string{"WaitingForQuota/Pending"}},
		{"its LocalQueue stopped", testWorkload(wlCond(condQuotaReserved, metav1.ConditionFalse, "Inadmissible", "LocalQueue team-a is stopped", 1)),
			[]string{"Inadmissible/Inadmissible"}},
		{"admitted", testWorkload(pendingWL(1), admittedWL(5)), []string{"Admitted/Admitted"}},
		{"preempted, its quota still held", testWorkload(admittedWL(5), preemptedWL(10)), []string{"Admitted/Admitted", "Preempted/InClusterQueue"}},
		{"preempted and requeued: no WaitingForQuota of its own", testWorkload(admittedWL(5), preemptedWL(10), requeuedWL(12)),
			[]string{"Preempted/InClusterQueue", "Requeued/Preempted"}},
		{"admitted again", testWorkload(preemptedWL(10), requeuedWL(12), readmittedWL(20)), []string{"Admitted/Admitted"}},
		{"evicted at the PodsReady timeout, backing off", testWorkload(admittedWL(5), podsReadyTimeout, backoff(metav1.ConditionFalse, "PodsReadyTimeout", 11)),
			[]string{"Evicted/PodsReadyTimeout"}},
		{"the back-off over", testWorkload(admittedWL(5), podsReadyTimeout, backoff(metav1.ConditionTrue, "BackoffFinished", 40)),
			[]string{"Evicted/PodsReadyTimeout", "Requeued/BackoffFinished"}},
		{"deactivated", testWorkload(wlCond(condEvicted, metav1.ConditionTrue, "DeactivatedDueToRequeuingLimitExceeded", "The workload is deactivated", 50)),
			[]string{"Deactivated/DeactivatedDueToRequeuingLimitExceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wl := parseWorkload(tt.workload)
			events := kueueEvents(wl, "run-1", t0)
			var got []string
			for _, e := range events {
				got = append(got, e.Reason+"/"+e.KueueReason)
				if e.Workload != wl.Name || e.Job != "run-1" || e.Pod != "" || e.Phase != "" || e.ID == "" {
					t.Errorf("event %+v", e)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
			// A replay of the same state has the same IDs.
			again := kueueEvents(parseWorkload(tt.workload), "run-1", t0.Add(1e9))
			for i := range events {
				if again[i].ID != events[i].ID {
					t.Errorf("event %d: ID not stable", i)
				}
			}
		})
	}
	// Two preemptions are two events, and two requeues.
	first := kueueEvents(parseWorkload(testWorkload(preemptedWL(10), requeuedWL(12))), "run-1", t0)
	second := kueueEvents(parseWorkload(testWorkload(preemptedWL(30), requeuedWL(12))), "run-1", t0)
	for i := range first {
		if first[i].ID == second[i].ID {
			t.Errorf("%s of two preemptions share an ID", first[i].Reason)
		}
	}
}

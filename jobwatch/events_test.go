package jobwatch

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestEventIDIsStableAndDistinct(t *testing.T) {
	a := eventID("uid-1", corev1.PodFailed, "Evicted")
	if a != eventID("uid-1", corev1.PodFailed, "Evicted") {
		t.Fatal("the same pod, phase and reason gave two IDs")
	}
	for _, other := range []string{
		eventID("uid-2", corev1.PodFailed, "Evicted"),
		eventID("uid-1", corev1.PodSucceeded, "Evicted"),
		eventID("uid-1", corev1.PodFailed, "OOMKilled"),
		eventID("uid-1", corev1.PodFailed, ""),
	} {
		if other == a {
			t.Errorf("different events share ID %s", a)
		}
	}
}

func TestPodEventReasons(t *testing.T) {
	tests := []struct {
		name   string
		pod    *corev1.Pod
		phase  corev1.PodPhase
		reason string
	}{
		{"an unschedulable pod is Pending for Unschedulable", testPod("p", 1, unschedulablePod), corev1.PodPending, "Unschedulable"},
		{"a pod that cannot pull is Pending for ErrImagePull", testPod("p", 1, waiting("main", "ErrImagePull")), corev1.PodPending, "ErrImagePull"},
		{"a running pod has no reason", testPod("p", 1, running), corev1.PodRunning, ""},
		{"a crash-looping pod is Running for CrashLoopBackOff", testPod("p", 1, running, waiting("main", "CrashLoopBackOff")), corev1.PodRunning, "CrashLoopBackOff"},
		{"an evicted pod is Failed for Evicted", testPod("p", 1, running, evictedPod), corev1.PodFailed, "Evicted"},
		{"an OOM-killed pod is Failed for OOMKilled", testPod("p", 1, running, exited("main", 137, "OOMKilled")), corev1.PodFailed, "OOMKilled"},
		{"a pod with no phase yet is Pending", testPod("p", 1, func(p *corev1.Pod) { p.Status.Phase = "" }), corev1.PodPending, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := podEvent("run-1", tt.pod, "main", t0)
			if e.Phase != tt.phase || e.Reason != tt.reason {
				t.Errorf("event %s/%q, want %s/%q", e.Phase, e.Reason, tt.phase, tt.reason)
			}
			if e.ID != eventID(tt.pod.UID, tt.phase, tt.reason) || e.Job != "run-1" || e.Pod != "p" || e.Time.IsZero() {
				t.Errorf("event %+v", e)
			}
		})
	}
}

func TestEventLogDropsReplaysAndStaleStatesAndLinksEvents(t *testing.T) {
	var got []Event
	log := newEventLog(EventFunc(func(e Event) { got = append(got, e) }))
	pending := testPod("p1", 1)
	run := testPod("p1", 1, running)
	done := testPod("p1", 1, running, exited("main", 0, "Completed"))
	for _, p := range []*corev1.Pod{pending, run, run, pending, done, run, done} {
		log.observe(p.UID, podEvent("run-1", p, "", t0))
	}
	want := []corev1.PodPhase{corev1.PodPending, corev1.PodRunning, corev1.PodSucceeded}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if e.Phase != want[i] {
			t.Errorf("event %d is %s, want %s", i, e.Phase, want[i])
		}
		prev := ""
		if i > 0 {
			prev = got[i-1].ID
		}
		if e.PrevID != prev {
			t.Errorf("event %d links to %q, want %q", i, e.PrevID, prev)
		}
	}
	// A second pod starts a new line of phases; its Pending is news.
	log.observe("p2-uid", podEvent("run-1", testPod("p2", 5), "", t0))
	if len(got) != 4 || got[3].PrevID != got[2].ID {
		t.Errorf("second pod's Pending: %+v", got)
	}
}

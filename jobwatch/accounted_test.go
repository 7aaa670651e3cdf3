package jobwatch

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// The Job controller writes FailureTarget in the same status update that
// lists the failed pods it has not counted yet: a Job that retried once
// then says failed 1, uncounted [second pod]. Its end is explained only
// once both pods are known, else the first pod's exit code and log would
// be taken for the run's.
func TestAccountedCountsThePodsTheJobControllerHasNotCountedYet(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run", UID: "job"},
		Spec:       batchv1.JobSpec{BackoffLimit: new(int32(1))},
		Status: batchv1.JobStatus{
			Failed:                  1,
			UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Failed: []types.UID{"second"}},
			Conditions:              []batchv1.JobCondition{{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded}},
		},
	}
	failed := func(uid types.UID) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: string(uid), UID: uid}, Status: corev1.PodStatus{Phase: corev1.PodFailed}}
	}
	trimmed := trimJob(job)
	if trimmed.Status.UncountedTerminatedPods == nil || len(trimmed.Status.UncountedTerminatedPods.Failed) != 1 {
		t.Fatalf("the cached Job lost its uncounted pods: %+v", trimmed.Status)
	}
	if accounted(trimmed, []*corev1.Pod{failed("first")}, nil) {
		t.Error("one failed pod explains a Job with one counted and one uncounted failure")
	}
	if !accounted(trimmed, []*corev1.Pod{failed("first"), failed("second")}, nil) {
		t.Error("two failed pods do not explain the Job's two failures")
	}
	job.Status.UncountedTerminatedPods = &batchv1.UncountedTerminatedPods{}
	if trimJob(job).Status.UncountedTerminatedPods != nil {
		t.Error("an empty uncounted list is kept in the cache")
	}
}

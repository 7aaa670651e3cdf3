package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// checkRetained fails unless the Job pid names exists without a TTL and
// with the template's TTL in AnnotationTTL, and its pod still holds the
// run container's exit code.
func checkRetained(t *testing.T, pid clusterid.PID, ttl string, exitCode int32) {
	t.Helper()
	client := adminClient(t)
	job, err := client.BatchV1().Jobs(pid.Namespace).Get(context.Background(), pid.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Job is not kept: %v", err)
	}
	if job.Spec.TTLSecondsAfterFinished != nil || job.Annotations[AnnotationTTL] != ttl {
		t.Errorf("the kept Job has TTL %v and annotation %q, want none and %q", job.Spec.TTLSecondsAfterFinished, job.Annotations[AnnotationTTL], ttl)
	}
	pods, err := client.CoreV1().Pods(pid.Namespace).List(context.Background(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + pid.Name})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("the kept Job's pods: %v, %v", pods, err)
	}
	cs := pods.Items[0].Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != exitCode {
		t.Errorf("the kept pod's container status is %+v, want exit code %d", cs, exitCode)
	}
}

// waitJobAndPodsGone waits until the Job pid names and its pods are gone.
func waitJobAndPodsGone(t *testing.T, pid clusterid.PID) {
	t.Helper()
	client := adminClient(t)
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, e2eTimeout, true, func(ctx context.Context) (bool, error) {
		_, err := client.BatchV1().Jobs(pid.Namespace).Get(ctx, pid.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		pods, err := client.CoreV1().Pods(pid.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + pid.Name})
		return err == nil && len(pods.Items) == 0, nil
	})
	if err != nil {
		t.Fatalf("the Job %s or its pods are still there: %v", pid, err)
	}
}

func TestRetainUntilRecordedKeepsATTL0JobUntilItsResultIsRecorded(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := fateWorker(t, adminClient(t), ns, "retain", Options{RetainUntilRecorded: true})
	recorded := false
	res, err := w.Run(t.Context(), RunSpec{
		ID:     "ttl0-fails",
		Values: fate(map[string]string{clustertest.AnnotationExitCode: "3"}, "finished_job_ttl", 0),
		OnResult: func(res Result) error {
			checkRetained(t, res.PID, "0", 3) // the Job finished, and is still there
			recorded = true
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != jobwatch.Failed || res.ExitCode != 3 || !recorded {
		t.Fatalf("got %s, exit code %d (recorded: %v); want Failed 3", res.Outcome, res.ExitCode, recorded)
	}
	waitJobAndPodsGone(t, res.PID) // the TTL of 0 applies once the Result is recorded
}

func TestAResultNotRecordedKeepsTheJobUntilAnAttachRecordsIt(t *testing.T) {
	ns := cluster.NewNamespace(t)
	first := fateWorker(t, adminClient(t), ns, "retain", Options{RetainUntilRecorded: true})
	storeDown := errors.New("the scheduler's store is down")
	res, err := first.Run(t.Context(), RunSpec{
		ID:       "ttl0-unrecorded",
		Values:   fate(map[string]string{clustertest.AnnotationExitCode: "7"}, "finished_job_ttl", 0),
		OnResult: func(Result) error { return storeDown },
	})
	if !errors.Is(err, storeDown) || res.Outcome != jobwatch.Failed || res.ExitCode != 7 {
		t.Fatalf("got %s %d, %v; want Failed 7 and the OnResult error", res.Outcome, res.ExitCode, err)
	}
	checkRetained(t, res.PID, "0", 7)

	// A worker without the option releases a retained Job all the same.
	second := fateWorker(t, adminClient(t), ns, "retain", Options{})
	again, err := second.Attach(t.Context(), res.PID, AttachOptions{})
	if err != nil || again.Outcome != jobwatch.Failed || again.ExitCode != 7 {
		t.Fatalf("Attach got %s %d, %v; want Failed 7", again.Outcome, again.ExitCode, err)
	}
	waitJobAndPodsGone(t, res.PID)
}

func TestReleaseDoesNotTouchANewJobOfTheSameName(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := fateWorker(t, adminClient(t), ns, "retain", Options{RetainUntilRecorded: true})
	pid := abandon(t, w, RunSpec{ID: "renamed", Values: fate(nil, "finished_job_ttl", 30)})
	client := adminClient(t)
	old, err := client.BatchV1().Jobs(ns).Get(t.Context(), pid.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := old.DeepCopy()
	stale.UID = types.UID("00000000-0000-0000-0000-000000000000") // as if the Job had been made again
	w.release(t.Context(), w.clusters.own, hold(stale), Result{PID: pid, Result: jobwatch.Result{Outcome: jobwatch.Succeeded}})
	got, err := client.BatchV1().Jobs(ns).Get(t.Context(), pid.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.TTLSecondsAfterFinished != nil {
		t.Errorf("a release meant for another Job of the same name set the TTL to %d", *got.Spec.TTLSecondsAfterFinished)
	}
	w.release(t.Context(), w.clusters.own, hold(old), Result{PID: pid, Result: jobwatch.Result{Outcome: jobwatch.Succeeded}})
	got, err = client.BatchV1().Jobs(ns).Get(t.Context(), pid.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.TTLSecondsAfterFinished == nil || *got.Spec.TTLSecondsAfterFinished != 30 {
		t.Errorf("release set the TTL to %v, want 30", got.Spec.TTLSecondsAfterFinished)
	}
}

package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// ranCall is what Run returned.
type ranCall struct {
	res Result
	err error
}

// runInBackground starts run on w and returns its Job's PID, once the
// Job exists, and Run's answer to come.
func runInBackground(t *testing.T, w *Worker, run RunSpec) (clusterid.PID, <-chan ranCall) {
	t.Helper()
	started := make(chan clusterid.PID, 1)
	run.Started = func(pid clusterid.PID) { started <- pid }
	done := make(chan ranCall, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		res, err := w.Run(ctx, run)
		done <- ranCall{res, err}
	}()
	select {
	case pid := <-started:
		return pid, done
	case c := <-done:
		t.Fatalf("run %s ended before its Job existed: %+v, %v", run.ID, c.res, c.err)
	case <-time.After(e2eTimeout):
		t.Fatalf("run %s: no Job", run.ID)
	}
	return clusterid.PID{}, nil
}

// ranCancelled checks that the run followed ended Cancelled, for reason.
func ranCancelled(t *testing.T, ch <-chan ranCall, reason string) {
	t.Helper()
	var c ranCall
	select {
	case c = <-ch:
	case <-time.After(e2eTimeout):
		t.Fatal("the run followed did not end")
	}
	if c.err != nil {
		t.Fatalf("Run: %v", c.err)
	}
	if c.res.Outcome != jobwatch.Cancelled || c.res.Outcome.Fault() != jobwatch.FaultCaller || c.res.Reason != jobwatch.ReasonCancelled ||
		c.res.Message != reason || c.res.ExitCode != -1 {
		t.Errorf("Run gave %s (%s), reason %q, message %q, exit code %d; want Cancelled, the caller's fault, %q",
			c.res.Outcome, c.res.Outcome.Fault(), c.res.Reason, c.res.Message, c.res.ExitCode, reason)
	}
}

// goneNow checks, at once, that the Job and its pods are gone.
func goneNow(t *testing.T, pid clusterid.PID) {
	t.Helper()
	client := adminClient(t)
	if _, err := client.BatchV1().Jobs(pid.Namespace).Get(t.Context(), pid.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Job is still there: %v", err)
	}
	pods, err := client.CoreV1().Pods(pid.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + pid.Name})
	if err != nil || len(pods.Items) > 0 {
		t.Errorf("pods still there: %d (%v)", len(pods.Items), err)
	}
}

// TestCancelFromAnotherWorker: replica B cancels, by PID, a run replica
// A follows; A's Run ends Cancelled with B's reason, and the Job and its
// pods are gone when B's Cancel returns.
func TestCancelFromAnotherWorker(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	a := fateWorker(t, adminClient(t), ns, "cancel", Options{})
	b := fateWorker(t, adminClient(t), ns, "cancel", Options{})
	pid, ran := runInBackground(t, a, RunSpec{ID: "long-1", Values: fate(map[string]string{clustertest.AnnotationDelay: "1h"})})
	podOfJob(t, pid, "running", podRunning)

	const why = "superseded by run long-2"
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	if err := b.Cancel(ctx, pid, why, CancelOptions{}); err != nil {
		t.Fatal(err)
	}
	goneNow(t, pid)
	ranCancelled(t, ran, why)

	if err := b.Cancel(ctx, pid, "again", CancelOptions{}); err != nil {
		t.Errorf("a second Cancel: %v, want nil", err)
	}
	if err := a.Cancel(ctx, pid, "again", CancelOptions{}); err != nil {
		t.Errorf("a second Cancel from the first worker, which did not cancel it: %v, want nil (the cancel's Event)", err)
	}
	gonePID := pid
	gonePID.Name = "never-was"
	if err := b.Cancel(ctx, gonePID, "", CancelOptions{}); !errors.Is(err, clusterid.ErrNotFound) {
		t.Errorf("Cancel of a Job that never was: %v, want ErrNotFound", err)
	}
}

// TestCancelOfAPodStuckTerminating: without Force, a Cancel whose
// context ends says the Job and the pod are left; with Force, the pod is
// deleted with a grace period of 0 once its grace and ForceAfter have
// passed, and the Cancel ends with both gone.
func TestCancelOfAPodStuckTerminating(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	a := fateWorker(t, adminClient(t), ns, "cancel-stuck", Options{})
	b := fateWorker(t, adminClient(t), ns, "cancel-stuck", Options{})
	pid, ran := runInBackground(t, a, RunSpec{ID: "stuck-1", Values: fate(map[string]string{
		clustertest.AnnotationDelay: "1h", clustertest.AnnotationStuckTerminating: "true",
	})})
	pod := podOfJob(t, pid, "running", podRunning)

	short, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	err := b.Cancel(short, pid, "stop", CancelOptions{})
	var left *CancelIncompleteError
	if !errors.As(err, &left) || !errors.Is(err, ErrCancelIncomplete) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Cancel with a short context: %v, want a *CancelIncompleteError", err)
	}
	if left.Job != pid.Name || len(left.Pods) != 1 || left.Pods[0] != pod.Name+" (Terminating)" || left.RunID != "stuck-1" {
		t.Errorf("left %+v; want Job %s and pod %s Terminating", left, pid.Name, pod.Name)
	}
	if !strings.Contains(err.Error(), pod.Name+" (Terminating)") {
		t.Errorf("%q does not name the pod", err)
	}
	// The deletion has begun: the run followed has ended.
	ranCancelled(t, ran, "stop")

	// Still stuck: Cancel again, forcing after a grace of 1 s plus 1 s.
	grace := time.Second
	ctx, cancel2 := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel2()
	start := time.Now()
	if err := b.Cancel(ctx, pid, "stop, forced", CancelOptions{Grace: &grace, Force: true, ForceAfter: time.Second}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Errorf("forced after %v, before grace and ForceAfter passed", d)
	}
	goneNow(t, pid)
	got, err := adminClient(t).CoreV1().Pods(ns).Get(t.Context(), pod.Name, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the stuck pod: %v, %v", got.GetDeletionTimestamp(), err)
	}
}

// TestCancelRunByItsID: CancelRun finds the run's Job by its run ID.
func TestCancelRunByItsID(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	a := fateWorker(t, adminClient(t), ns, "cancel-run", Options{})
	b := fateWorker(t, adminClient(t), ns, "cancel-run", Options{})
	pid, ran := runInBackground(t, a, RunSpec{ID: "by-id-1", Values: fate(map[string]string{clustertest.AnnotationDelay: "1h"})})
	other, otherRan := runInBackground(t, a, RunSpec{ID: "by-id-2", Values: fate(map[string]string{clustertest.AnnotationDelay: "1h"})})
	podOfJob(t, pid, "running", podRunning)

	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	if err := b.CancelRun(ctx, "by-id-1", "", CancelOptions{}); err != nil {
		t.Fatal(err)
	}
	goneNow(t, pid)
	ranCancelled(t, ran, jobwatch.DefaultCancelMessage)
	if err := b.CancelRun(ctx, "by-id-1", "", CancelOptions{}); err != nil {
		t.Errorf("a second CancelRun: %v, want nil", err)
	}
	if err := b.CancelRun(ctx, "by-id-unknown", "", CancelOptions{}); !errors.Is(err, clusterid.ErrNotFound) {
		t.Errorf("CancelRun of an unknown run: %v, want ErrNotFound", err)
	}

	// The other run was not touched; cancel it by PID from the follower.
	job, err := adminClient(t).BatchV1().Jobs(ns).Get(t.Context(), other.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, marked := job.Annotations[jobwatch.AnnotationCancelled]; marked || job.DeletionTimestamp != nil {
		t.Fatalf("the other run's Job was touched: %v", job.ObjectMeta)
	}
	if err := a.Cancel(ctx, other, "done with it", CancelOptions{}); err != nil {
		t.Fatal(err)
	}
	ranCancelled(t, otherRan, "done with it")
	waitGone(t, ns, other.Name)
}

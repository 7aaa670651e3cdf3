package jobwatch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/manifest"
)

func withRunID(name, runID string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		j.Name = name
		j.Spec.Template.Labels = map[string]string{manifest.LabelManagedBy: manifest.ManagedBy, manifest.LabelRunID: runID}
	}
}

func TestRunJobsNamesTheRunsJobsFromTheStream(t *testing.T) {
	w, _, _ := newFakeWatcher(t,
		testJob(withRunID("b", "run-1")), testJob(withRunID("a", "run-1")),
		testJob(withRunID("c", "run-2")), testJob(func(j *batchv1.Job) { j.Name = "no-run-id" }))
	got, err := w.RunJobs(t.Context(), "ns", "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b"}; !slices.Equal(got, want) {
		t.Errorf("RunJobs(run-1) = %v, want %v", got, want)
	}
	if got, err := w.RunJobs(t.Context(), "ns", "run-3"); err != nil || len(got) != 0 {
		t.Errorf("RunJobs(run-3) = %v, %v; want none", got, err)
	}
	if _, err := w.RunJobs(t.Context(), "Not A Namespace", "run-1"); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("a bad namespace gave %v, want ErrInvalidRef", err)
	}
}

func TestWaitForSyncStartsTheStreamsAndWaitsForThem(t *testing.T) {
	w, _, _ := newFakeWatcher(t, testJob(withRunID("a", "run-1")))
	if err := w.WaitForSync(t.Context(), "ns", "other"); err != nil {
		t.Fatal(err)
	}
	if err := w.Synced(); err != nil {
		t.Errorf("Synced() after WaitForSync = %v", err)
	}
	w.mu.Lock()
	n := len(w.streams)
	w.mu.Unlock()
	if n != 2 {
		t.Errorf("%d streams after WaitForSync of two namespaces", n)
	}
	if err := w.WaitForSync(t.Context(), "Not A Namespace"); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("a bad namespace gave %v, want ErrInvalidRef", err)
	}
}

func TestWaitForSyncStopsAtARefusal(t *testing.T) {
	w, client, _ := newFakeWatcher(t)
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
	})
	err := w.WaitForSync(t.Context(), "ns")
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "pods of namespace ns") {
		t.Errorf("WaitForSync = %v, want the Forbidden, naming pods and the namespace", err)
	}
}

func TestWaitForSyncEndsWithItsContext(t *testing.T) {
	w, client, _ := newFakeWatcher(t)
	client.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("not now")
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := w.WaitForSync(ctx, "ns")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "jobs not synced") {
		t.Errorf("WaitForSync = %v, want the deadline and what did not sync", err)
	}
	w.Close()
	if err := w.WaitForSync(t.Context(), "ns"); !errors.Is(err, ErrClosed) {
		t.Errorf("WaitForSync after Close = %v, want ErrClosed", err)
	}
}

package jobwatch

import (
	"errors"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"

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

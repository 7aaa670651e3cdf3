package worker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

// A restarted scheduler attaches to the runs it stored: by PID, with the
// log continued from the last line it saved. Here the cluster is a fake
// one, whose Job is gone: that is a Result, not an error.
func ExampleWorker_Attach() {
	ctx := context.Background()
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "c1"}})
	w, err := worker.New(client, worker.Options{Name: "etl"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(ctx)

	for _, stored := range []string{"c1:jobs:etl-2uzkpq3cde", "c1:jobs", "c2:jobs:etl-2uzkpq3cde"} {
		pid, err := clusterid.ParsePID(stored)
		if err != nil {
			fmt.Println("malformed:", errors.Is(err, clusterid.ErrInvalidPID))
			continue
		}
		res, err := w.Attach(ctx, pid, worker.AttachOptions{Logs: os.Stdout})
		switch {
		case errors.Is(err, clusterid.ErrWrongCluster):
			fmt.Println("another cluster's run")
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println(res.Outcome, res.ExitCode)
		}
	}
	// Output:
	// Deleted -1
	// malformed: true
	// another cluster's run
}

// At start-up, a scheduler sweeps: it attaches to the runs it still
// knows, records each Result as it comes, and lets the Worker delete the
// Jobs of runs it has forgotten.
func ExampleWorker_Sweep() {
	ctx := context.Background()
	client := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "c1"}},
		exampleJob("etl-1", "run-1", true),  // known, finished
		exampleJob("etl-2", "run-2", false), // forgotten, running
		exampleJob("etl-3", "run-3", false), // forgotten, running
		examplePod("etl-1", "run-1", 0),
	)
	w, err := worker.New(client, worker.Options{Name: "etl", Namespaces: []string{"jobs"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(ctx) // ends the attaches, and waits for them

	known := map[string]bool{"run-1": true} // from the scheduler's store
	store := make(chan string, 1)
	report, err := w.Sweep(ctx, func(runID string) bool { return known[runID] }, worker.SweepOptions{
		Ended: func(run worker.RunInfo, res worker.Result, err error) error {
			if err != nil {
				return err // not followed to its end: the Job is kept
			}
			store <- fmt.Sprint(run.RunID, " ", res.Outcome, " ", res.ExitCode)
			return nil // recorded: a retained Job may go now
		},
	})
	if err != nil {
		fmt.Println(err)
	}
	fmt.Println(len(report.Attached), "attached,", len(report.Deleted), "deleted")
	<-report.Done
	fmt.Println("recorded", <-store)
	// Output:
	// 1 attached, 2 deleted
	// recorded run-1 Succeeded 0
}

// exampleJob is a Job of the worker "etl" for runID, created an hour ago.
func exampleJob(name, runID string, complete bool) *batchv1.Job {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "jobs", UID: types.UID(name), CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour)),
			Labels: map[string]string{worker.LabelWorker: "etl", manifest.LabelRunID: runID, manifest.LabelManagedBy: manifest.ManagedBy},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "run"}}},
		}},
	}
	if complete {
		job.Status = batchv1.JobStatus{Succeeded: 1, Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}
	}
	return job
}

// examplePod is the finished pod of the Job name.
func examplePod(job, runID string, exitCode int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: job + "-pod", Namespace: "jobs", UID: types.UID(job + "-pod"),
			Labels:          map[string]string{batchv1.JobNameLabel: job, manifest.LabelRunID: runID, manifest.LabelManagedBy: manifest.ManagedBy},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job, UID: types.UID(job), Controller: new(true)}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "run"}}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "run", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: "Completed"}},
		}}},
	}
}

package worker

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// sweepScene is a namespace with Jobs of the worker "sweeper" (runs
// known-done, known-running, unknown-running, unknown-done), of the worker
// "bystander", one made by kubeworker's preparation without a worker
// label, and one with no kubeworker label at all.
type sweepScene struct {
	ns       string
	w        *Worker
	pids     map[string]clusterid.PID // by run ID, of every Job made by a worker
	plain    string                   // the Job without labels
	noWorker string                   // the Job without the worker label
}

func newSweepScene(t *testing.T) *sweepScene {
	t.Helper()
	client := adminClient(t)
	s := &sweepScene{ns: cluster.NewNamespace(t), pids: map[string]clusterid.PID{}}
	s.w = fateWorker(t, client, s.ns, "sweeper", Options{})
	bystander := fateWorker(t, client, s.ns, "bystander", Options{})
	long := fate(map[string]string{clustertest.AnnotationDelay: "1h"})
	for _, r := range []struct {
		w      *Worker
		id     string
		values map[string]any
	}{
		{s.w, "known-done", fate(map[string]string{clustertest.AnnotationExitCode: "2"})},
		{s.w, "known-running", long},
		{s.w, "unknown-running", long},
		{s.w, "unknown-done", nil},
		{bystander, "bystander-running", long},
	} {
		s.pids[r.id] = abandon(t, r.w, RunSpec{ID: r.id, Values: r.values})
	}
	noWorker := preparedJob(t, s.ns, "no-worker", map[string]any{"name": "no-worker"})
	created, err := client.BatchV1().Jobs(s.ns).Create(t.Context(), noWorker, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.noWorker = created.Name
	plain := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: s.ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{clustertest.AnnotationDelay: "1h"}},
			Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "busybox"}},
			}}},
	}
	if _, err := client.BatchV1().Jobs(s.ns).Create(t.Context(), plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.plain = plain.Name
	return s
}

func TestListGivesThisWorkersRunsWithTheirPhases(t *testing.T) {
	s := newSweepScene(t)
	want := map[string]Phase{
		"known-done": PhaseFailed, "known-running": PhaseRunning, "unknown-running": PhaseRunning, "unknown-done": PhaseSucceeded,
	}
	var runs []RunInfo
	// A Job's status follows its pods: wait until it says what the pods do.
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, e2eTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		runs, err = s.w.List(ctx)
		if err != nil {
			return false, err
		}
		for _, r := range runs {
			if want[r.RunID] != r.Phase {
				return false, nil
			}
		}
		return len(runs) == len(want), nil
	})
	if err != nil {
		t.Fatalf("List gave %+v: %v", runs, err)
	}
	for i, r := range runs {
		if r.PID != s.pids[r.RunID] || r.Age <= 0 || r.CreatedAt.IsZero() {
			t.Errorf("run %s: %+v, want PID %s and an age", r.RunID, r, s.pids[r.RunID])
		}
		if i > 0 && r.CreatedAt.Before(runs[i-1].CreatedAt) {
			t.Errorf("runs not oldest first: %+v", runs)
		}
	}
}

func TestSweepAttachesKnownRunsDeletesUnknownOnesAndLeavesOtherJobsAlone(t *testing.T) {
	s := newSweepScene(t)
	client := adminClient(t)
	known := func(id string) bool { return strings.HasPrefix(id, "known-") }

	// Within the grace, unknown runs are spared; known ones are attached.
	var mu sync.Mutex
	ended := map[string]Result{}
	opts := SweepOptions{
		Grace: time.Hour,
		Ended: func(run RunInfo, res Result, err error) error {
			if err != nil {
				t.Errorf("run %s: %v", run.RunID, err)
			}
			mu.Lock()
			ended[run.RunID] = res
			mu.Unlock()
			return nil
		},
	}
	report, err := s.w.Sweep(t.Context(), known, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := runIDs(report.Attached); got != "known-done,known-running" {
		t.Errorf("attached %s", got)
	}
	if got := runIDs(report.Spared); got != "unknown-done,unknown-running" || len(report.Deleted) != 0 {
		t.Errorf("spared %s, deleted %s; want the unknown runs spared", got, runIDs(report.Deleted))
	}
	pod := podOfJob(t, s.pids["known-running"], "running", podRunning)
	setPodDelay(t, pod, "0s")
	<-report.Done
	if r := ended["known-done"]; r.Outcome != jobwatch.Failed || r.ExitCode != 2 || r.PID != s.pids["known-done"] {
		t.Errorf("known-done ended as %+v", r)
	}
	if r := ended["known-running"]; r.Outcome != jobwatch.Succeeded || r.ExitCode != 0 {
		t.Errorf("known-running ended as %+v", r)
	}

	// With no grace, the unknown runs' Jobs go, with their pods.
	podOfJob(t, s.pids["unknown-running"], "running", podRunning)
	opts.Grace = -1
	report, err = s.w.Sweep(t.Context(), known, opts)
	if err != nil {
		t.Fatal(err)
	}
	<-report.Done
	if got := runIDs(report.Deleted); got != "unknown-done,unknown-running" {
		t.Errorf("deleted %s", got)
	}
	for _, id := range []string{"unknown-done", "unknown-running"} {
		job, err := client.BatchV1().Jobs(s.ns).Get(t.Context(), s.pids[id].Name, metav1.GetOptions{})
		if err == nil && !slices.Contains(job.Finalizers, metav1.FinalizerDeleteDependents) {
			t.Errorf("the Job of %s is deleted without foreground propagation: finalizers %v", id, job.Finalizers)
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		waitJobAndPodsGone(t, s.pids[id])
	}

	// Everything else is still there, pods included.
	for _, name := range []string{s.pids["known-done"].Name, s.pids["known-running"].Name, s.pids["bystander-running"].Name, s.noWorker, s.plain} {
		if _, err := client.BatchV1().Jobs(s.ns).Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("Job %s: %v", name, err)
		}
	}
	for _, name := range []string{s.pids["bystander-running"].Name, s.plain} {
		pods, err := client.CoreV1().Pods(s.ns).List(t.Context(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
		if err != nil || len(pods.Items) != 1 || pods.Items[0].DeletionTimestamp != nil {
			t.Errorf("the pod of Job %s: %v, %v", name, pods, err)
		}
	}
}

func runIDs(runs []RunInfo) string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.RunID
	}
	sort.Strings(ids)
	return strings.Join(ids, ",")
}

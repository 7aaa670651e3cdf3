package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// e2eTimeout bounds each wait of the end-to-end tests for the cluster.
const e2eTimeout = 2 * time.Minute

// fate is the values of a run whose pod has the annotations ann.
func fate(ann map[string]string, more ...any) map[string]any {
	pa := map[string]any{}
	for k, v := range ann {
		pa[k] = v
	}
	vals := map[string]any{"pod_annotations": pa}
	for i := 0; i+1 < len(more); i += 2 {
		vals[more[i].(string)] = more[i+1]
	}
	return vals
}

// fateWorker is a Worker named name, on the fate template, in ns.
func fateWorker(t testing.TB, client kubernetes.Interface, ns, name string, opts Options) *Worker {
	t.Helper()
	opts.Name, opts.Namespace, opts.Template = name, ns, jobtest.FateTemplate()
	opts.Retry = fastRetry
	w, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// abandon starts run and stops following it as soon as its Job exists,
// as a worker process that goes away would; it returns the Job's PID.
func abandon(t testing.TB, w *Worker, run RunSpec) clusterid.PID {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pid clusterid.PID
	run.Started = func(p clusterid.PID) { pid = p; cancel() }
	if _, err := w.Run(ctx, run); !errors.Is(err, context.Canceled) {
		t.Fatalf("run %s: got %v, want it abandoned", run.ID, err)
	}
	return pid
}

// podOfJob waits until the Job named by pid has a pod for which ok holds.
func podOfJob(t testing.TB, pid clusterid.PID, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	client := adminClient(t)
	var found *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, e2eTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(pid.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + pid.Name})
		if err != nil {
			return false, nil
		}
		for i := range pods.Items {
			if ok(&pods.Items[i]) {
				found = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("waiting for a pod of %s that is %s: %v", pid.Name, what, err)
	}
	return found
}

func podRunning(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

// setPodDelay changes a pod's delay annotation; "0s" lets it finish.
func setPodDelay(t testing.TB, pod *corev1.Pod, delay string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, clustertest.AnnotationDelay, delay)
	if _, err := adminClient(t).CoreV1().Pods(pod.Namespace).Patch(context.Background(), pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch pod %s: %v", pod.Name, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAttachToAFinishedJobGivesRunsResultAndLog(t *testing.T) {
	ns := cluster.NewNamespace(t)
	first := fateWorker(t, adminClient(t), ns, "attach-finished", Options{})
	var runLog bytes.Buffer
	ran, err := first.Run(t.Context(), RunSpec{ID: "finished-1", Logs: &runLog,
		Values: fate(map[string]string{clustertest.AnnotationLog: "alpha\nbeta", clustertest.AnnotationExitCode: "4"})})
	if err != nil {
		t.Fatal(err)
	}
	if ran.Outcome != jobwatch.Failed || ran.ExitCode != 4 || runLog.String() != "alpha\nbeta\n" {
		t.Fatalf("Run gave %s %d, log %q", ran.Outcome, ran.ExitCode, runLog.String())
	}

	second := fateWorker(t, adminClient(t), ns, "attach-finished", Options{})
	var log bytes.Buffer
	res, err := second.Attach(t.Context(), ran.PID, AttachOptions{Logs: &log})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != ran.Outcome || res.ExitCode != ran.ExitCode || res.RunID != "finished-1" || res.PID != ran.PID ||
		!res.CreatedAt.Equal(ran.CreatedAt) || res.Pod != ran.Pod || !res.LastLogTime.Equal(ran.LastLogTime) {
		t.Errorf("Attach gave %+v\nRun gave %+v", res, ran)
	}
	if log.String() != "alpha\nbeta\n" {
		t.Errorf("Attach from the start logged %q", log.String())
	}

	log.Reset()
	res, err = second.Attach(t.Context(), ran.PID, AttachOptions{Logs: &log, LogsSince: ran.LastLogTime})
	if err != nil || res.Outcome != jobwatch.Failed || res.ExitCode != 4 {
		t.Fatalf("Attach since the last line: %s %d, %v", res.Outcome, res.ExitCode, err)
	}
	if log.Len() != 0 {
		t.Errorf("Attach since the last line logged %q, want nothing", log.String())
	}
}

func TestAttachReportsAJobDeletedWhileFollowedAsDeleted(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := fateWorker(t, adminClient(t), ns, "attach-deleted", Options{})
	pid := abandon(t, w, RunSpec{ID: "deleted-1", Values: fate(map[string]string{clustertest.AnnotationDelay: "1h"})})
	podOfJob(t, pid, "running", podRunning)

	running := make(chan struct{})
	var once sync.Once
	done := make(chan Result, 1)
	go func() {
		res, err := w.Attach(context.Background(), pid, AttachOptions{Events: jobwatch.EventFunc(func(e jobwatch.Event) {
			if e.Phase == corev1.PodRunning {
				once.Do(func() { close(running) })
			}
		})})
		if err != nil {
			t.Errorf("Attach: %v", err)
		}
		done <- res
	}()
	<-running
	if err := w.Kill(t.Context(), pid, 0); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.Outcome != jobwatch.Deleted || res.RunID != "deleted-1" {
		t.Errorf("got %s for run %q, want Deleted", res.Outcome, res.RunID)
	}
	waitGone(t, ns, pid.Name)

	res, err := w.Attach(t.Context(), pid, AttachOptions{})
	if err != nil || res.Outcome != jobwatch.Deleted || res.ExitCode != -1 {
		t.Errorf("Attach to a Job that is gone: %s %d, %v; want Deleted -1 and no error", res.Outcome, res.ExitCode, err)
	}
}

func TestAttachRefusesBadInputOnTheCluster(t *testing.T) {
	ns := cluster.NewNamespace(t)
	client := adminClient(t)
	w := fateWorker(t, client, ns, "attach-mine", Options{})
	others := fateWorker(t, client, ns, "attach-others", Options{})
	othersPID := abandon(t, others, RunSpec{ID: "others-1"})
	plain := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "busybox"}},
		}}},
	}
	if _, err := client.BatchV1().Jobs(ns).Create(t.Context(), plain, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	plainPID := othersPID
	plainPID.Name = "plain"

	t.Run("a malformed PID string", func(t *testing.T) {
		_, err := clusterid.ParsePID(othersPID.ClusterUID + ":" + ns)
		var pe *clusterid.PIDError
		if !errors.Is(err, clusterid.ErrInvalidPID) || !errors.As(err, &pe) || pe.Part != clusterid.PartWhole {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a malformed PID", func(t *testing.T) {
		_, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: othersPID.ClusterUID, Namespace: ns, Name: "Not_A_Name"}, AttachOptions{})
		var pe *clusterid.PIDError
		if !errors.Is(err, clusterid.ErrInvalidPID) || !errors.As(err, &pe) || pe.Part != clusterid.PartName {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a PID of another cluster", func(t *testing.T) {
		pid := othersPID
		pid.ClusterUID = "0a1b2c3d-another-cluster"
		_, err := w.Attach(t.Context(), pid, AttachOptions{})
		var wc *clusterid.WrongClusterError
		if !errors.Is(err, clusterid.ErrWrongCluster) || !errors.As(err, &wc) || wc.PID != pid || wc.Want != othersPID.ClusterUID ||
			!strings.Contains(err.Error(), othersPID.ClusterUID) || !strings.Contains(err.Error(), pid.ClusterUID) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("another worker's Job", func(t *testing.T) {
		_, err := w.Attach(t.Context(), othersPID, AttachOptions{})
		var nm *NotManagedError
		if !errors.As(err, &nm) || !errors.Is(err, ErrNotManaged) ||
			!strings.Contains(err.Error(), `label "kubeworker.io/worker" is "attach-others", want "attach-mine"`) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a Job without labels", func(t *testing.T) {
		_, err := w.Attach(t.Context(), plainPID, AttachOptions{})
		var nm *NotManagedError
		if !errors.As(err, &nm) || len(nm.Problems) != 3 {
			t.Errorf("got %v", err)
		}
	})
}

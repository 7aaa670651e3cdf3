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

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// podAnnotations is a customization that scripts the pod's fate.
func podAnnotations(ann map[string]string) []byte {
	var b strings.Builder
	b.WriteString(`[{"op": "add", "path": "/spec/template/metadata", "value": {"annotations": {`)
	i := 0
	for k, v := range ann {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%q: %q", k, v)
		i++
	}
	b.WriteString(`}}}]`)
	return []byte(b.String())
}

func newTestWorker(t *testing.T, ns string, ann map[string]string, opts Options) *Worker {
	t.Helper()
	opts.Namespace = ns
	opts.Prepare.Customizations = podAnnotations(ann)
	opts.Retry = fastRetry
	w, err := New(adminClient(t), opts)
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

func TestRunFollowsAJobToSuccessWithItsLogs(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationLog: "hello\nworld"}, Options{})
	var logs bytes.Buffer
	var started []clusterid.PID
	var phases []string
	var mu sync.Mutex
	res, err := w.Run(t.Context(), RunSpec{
		ID: "ok-1", Name: "Hello run", Logs: &logs,
		Started: func(pid clusterid.PID) { started = append(started, pid) },
		Events:  jobwatch.EventFunc(func(e jobwatch.Event) { mu.Lock(); phases = append(phases, string(e.Phase)); mu.Unlock() }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != jobwatch.Succeeded || res.ExitCode != 0 {
		t.Errorf("outcome %v exit %d, want Succeeded 0", res.Outcome, res.ExitCode)
	}
	if len(started) != 1 || started[0] != res.PID || res.PID.Namespace != ns {
		t.Errorf("Started got %v, Result PID %v", started, res.PID)
	}
	if _, err := clusterid.ParsePID(res.PID.String()); err != nil {
		t.Errorf("the PID does not parse back: %v", err)
	}
	if logs.String() != "hello\nworld\n" {
		t.Errorf("logs %q, want hello and world", logs.String())
	}
	job, err := adminClient(t).BatchV1().Jobs(ns).Get(t.Context(), res.PID.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Labels[LabelWorker] != "kubeworker" || job.Labels[manifest.LabelRunID] != "ok-1" {
		t.Errorf("labels %v lack the worker or run ID", job.Labels)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(phases) == 0 || phases[len(phases)-1] != "Succeeded" {
		t.Errorf("phases %v, want them to end in Succeeded", phases)
	}
}

func TestRunReportsTheExitCodeOfAFailedRun(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationExitCode: "3"}, Options{})
	res, err := w.Run(t.Context(), RunSpec{ID: "fail-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != jobwatch.Failed || res.ExitCode != 3 {
		t.Errorf("outcome %v exit %d, want Failed 3", res.Outcome, res.ExitCode)
	}
}

func TestRunKeepsEnvValuesOutOfTheJobSpecInSecretMode(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, nil, Options{Secrets: SecretsOptions{Env: true}})
	res, err := w.Run(t.Context(), RunSpec{ID: "secret-1", Env: map[string]string{"TOKEN": "s3cr3t-value"}})
	if err != nil {
		t.Fatal(err)
	}
	job, err := adminClient(t).BatchV1().Jobs(ns).Get(t.Context(), res.PID.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := job.Marshal(); bytes.Contains(data, []byte("s3cr3t-value")) {
		t.Error("the secret value is in the Job spec")
	}
	if res.Outcome != jobwatch.Succeeded {
		t.Errorf("outcome %v, want Succeeded", res.Outcome)
	}
}

func TestCancellingRunDeletesTheJobWhenAsked(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationDelay: "1h"}, Options{DeleteOnCancel: true})
	ctx, cancel := context.WithCancel(t.Context())
	pids := make(chan clusterid.PID, 1)
	go func() { pid := <-pids; time.Sleep(500 * time.Millisecond); _ = pid; cancel() }()
	res, err := w.Run(ctx, RunSpec{ID: "cancel-1", Started: func(p clusterid.PID) { pids <- p }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	waitGone(t, ns, res.PID.Name)
}

func TestKillDeletesARunningJob(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationDelay: "1h"}, Options{})
	done := make(chan Result, 1)
	pids := make(chan clusterid.PID, 1)
	go func() {
		res, _ := w.Run(t.Context(), RunSpec{ID: "kill-1", Started: func(p clusterid.PID) { pids <- p }})
		done <- res
	}()
	pid := <-pids
	if err := w.Kill(t.Context(), pid, 0); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.Outcome != jobwatch.Deleted {
		t.Errorf("outcome %v after Kill, want Deleted", res.Outcome)
	}
	waitGone(t, ns, pid.Name)
	if err := w.Kill(t.Context(), pid, 0); !errors.Is(err, clusterid.ErrNotFound) {
		t.Errorf("a second Kill gave %v, want ErrNotFound", err)
	}
}

func waitGone(t *testing.T, ns, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := adminClient(t).BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("Job %s/%s still there: %v", ns, name, err)
	}
}

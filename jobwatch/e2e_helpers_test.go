package jobwatch

import (
	"context"
	"fmt"
	"log/slog"
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
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/manifest"
)

// e2eTimeout bounds each Wait of the end-to-end tests: generous, as a
// busy two-core machine is slow, and no test asserts how fast anything is.
const e2eTimeout = 3 * time.Minute

func clientFor(t testing.TB, conf *rest.Config) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// newWatcher returns a Watcher reading through conf, closed when the
// test ends, logging Warn and above to the test log.
func newWatcher(t testing.TB, conf *rest.Config) *Watcher {
	t.Helper()
	w := New(clientFor(t, conf), Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Cleanup(w.Close)
	return w
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// runJob returns a Job of one pod (container "main", restartPolicy
// Never, backoffLimit 0) labelled as manifest.Prepare labels a run, whose
// pod template carries the clustertest annotations that script its fate.
func runJob(annotations map[string]string, mods ...func(*batchv1.Job)) *batchv1.Job {
	labels := map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "run-", Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "example.com/run:1"}},
				},
			},
		},
	}
	for _, m := range mods {
		m(job)
	}
	return job
}

func createJob(t testing.TB, client kubernetes.Interface, ns string, job *batchv1.Job) *batchv1.Job {
	t.Helper()
	created, err := client.BatchV1().Jobs(ns).Create(context.Background(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return created
}

// waitJob waits for the Job and fails the test on an error.
func waitJob(t testing.TB, w *Watcher, job *batchv1.Job, opts WaitOptions) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	res, err := w.Wait(ctx, JobRef{Namespace: job.Namespace, Name: job.Name}, opts)
	if err != nil {
		t.Fatalf("Wait(%s/%s) = %+v, %v", job.Namespace, job.Name, res, err)
	}
	return res
}

func expect(t testing.TB, res Result, outcome Outcome, exitCode int) {
	t.Helper()
	if res.Outcome != outcome || res.ExitCode != exitCode {
		t.Errorf("Result %s, exit code %d; want %s, %d (result %+v)", res.Outcome, res.ExitCode, outcome, exitCode, res)
	}
}

// podOf waits until the Job has a pod for which ok is true.
func podOf(t testing.TB, client kubernetes.Interface, job *batchv1.Job, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, e2eTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
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
		t.Fatalf("waiting for a pod of %s that is %s: %v", job.Name, what, err)
	}
	return found
}

func isRunning(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

// setDelay changes the pod's delay annotation; "0s" lets it finish.
func setDelay(t testing.TB, client kubernetes.Interface, pod *corev1.Pod, delay string) {
	t.Helper()
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, clustertest.AnnotationDelay, delay)
	if _, err := client.CoreV1().Pods(pod.Namespace).Patch(context.Background(), pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch pod %s: %v", pod.Name, err)
	}
}

// asyncWait runs Wait in a goroutine.
func asyncWait(w *Watcher, job *batchv1.Job, opts WaitOptions) <-chan waitCall {
	ch := make(chan waitCall, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
		defer cancel()
		res, err := w.Wait(ctx, JobRef{Namespace: job.Namespace, Name: job.Name}, opts)
		ch <- waitCall{res, err}
	}()
	return ch
}

// recorder is an EventSink that keeps what it gets.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

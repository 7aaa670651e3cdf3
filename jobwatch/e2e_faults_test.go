package jobwatch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// The fault tests are not parallel: each breaks the API server or the
// proxy for everyone.

// fate is a scripted run and the Result it must give.
type fate struct {
	annotations map[string]string
	backoff     int32
	outcome     Outcome
	exitCode    int
}

// fates cycles through five endings, each run lasting delay to jitter.
func fates(i int, delay, jitter string) fate {
	a := map[string]string{tc.AnnotationDelay: delay, tc.AnnotationJitter: jitter}
	switch i % 5 {
	case 0:
		return fate{a, 0, Succeeded, 0}
	case 1:
		a[tc.AnnotationExitCode] = "3"
		return fate{a, 0, Failed, 3}
	case 2:
		a[tc.AnnotationExitCode], a[tc.AnnotationReason] = "137", "OOMKilled"
		return fate{a, 0, OOMKilled, 137}
	case 3:
		a[tc.AnnotationEvict] = "The node was low on resource: memory."
		return fate{a, 0, Evicted, 137}
	default:
		a[tc.AnnotationExitCode] = "1"
		return fate{a, 1, BackoffLimitExceeded, 1}
	}
}

// startRuns creates n Jobs with cycling fates and waits for each.
func startRuns(t *testing.T, client kubernetes.Interface, w *Watcher, ns string, n int, delay, jitter string, opts WaitOptions) ([]fate, []<-chan waitCall) {
	t.Helper()
	var want []fate
	var chans []<-chan waitCall
	for i := range n {
		f := fates(i, delay, jitter)
		job := createJob(t, client, ns, runJob(f.annotations, func(j *batchv1.Job) { j.Spec.BackoffLimit = new(f.backoff) }))
		want = append(want, f)
		chans = append(chans, asyncWait(w, job, opts))
	}
	return want, chans
}

func checkRuns(t *testing.T, want []fate, chans []<-chan waitCall) {
	t.Helper()
	for i, ch := range chans {
		c := <-ch
		if c.err != nil {
			t.Errorf("run %d: %v", i, c.err)
			continue
		}
		if c.res.Outcome != want[i].outcome || c.res.ExitCode != want[i].exitCode {
			t.Errorf("run %d (%s): %s, exit code %d; want %s, %d", i, c.res.Pod, c.res.Outcome, c.res.ExitCode, want[i].outcome, want[i].exitCode)
		}
	}
}

func TestE2EA410GoneMidRunIsSurvived(t *testing.T) {
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	var logs safeBuffer
	w := New(clientFor(t, cluster.ProxyConfig()), Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(w.Close)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h", tc.AnnotationExitCode: "6"}))
	var rec recorder
	ch := asyncWait(w, job, WaitOptions{Events: &rec})
	pod := podOf(t, client, job, "Running", isRunning)
	waitUntil(t, "Wait to see the pod run", func() bool {
		e := rec.all()
		return len(e) > 0 && e[len(e)-1].Phase == corev1.PodRunning
	})
	// Move etcd's revision past the informers' last resourceVersion,
	// compact, and drop their watches: they must resume from a
	// compacted revision, get 410 Gone, and relist.
	for i := range 20 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i)}}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cluster.CompactEtcd(t.Context()); err != nil {
		t.Fatal(err)
	}
	cluster.Proxy().CutAll()
	waitUntil(t, "the watch to expire (410 Gone)", func() bool {
		s := logs.String()
		return strings.Contains(s, "too old") || strings.Contains(s, "Expired")
	})
	setDelay(t, client, pod, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Failed, 6)
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "too old") && !strings.Contains(line, "Expired") {
			continue
		}
		t.Logf("seen: %s", line)
		if !strings.Contains(line, "level=DEBUG") {
			t.Errorf("410 logged above Debug: %s", line)
		}
	}
}

func TestE2EFiftyRunsSurviveAPIServerRestarts(t *testing.T) {
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	w := newWatcher(t, cluster.Config())
	want, chans := startRuns(t, client, w, ns, 50, "4s", "20s", WaitOptions{})
	time.Sleep(3 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := cluster.RestartAPIServer(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	if err := cluster.RestartAPIServer(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	checkRuns(t, want, chans)
}

func TestE2ERunsAndLogsSurviveTheProxyCuttingEverythingRepeatedly(t *testing.T) {
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	var debug safeBuffer
	w := New(clientFor(t, cluster.ProxyConfig()), Options{Logger: slog.New(slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	t.Cleanup(func() {
		w.Close()
		if t.Failed() {
			t.Logf("the Watcher's log:\n%s", debug.String())
		}
	})
	var outs []*safeBuffer
	var want []fate
	var chans []<-chan waitCall
	for i := range 20 {
		f := fates(i, "2s", "10s")
		f.annotations[tc.AnnotationLog] = strings.Repeat("line\n", 50) + "last"
		job := createJob(t, client, ns, runJob(f.annotations, func(j *batchv1.Job) { j.Spec.BackoffLimit = new(f.backoff) }))
		out := &safeBuffer{}
		outs, want = append(outs, out), append(want, f)
		chans = append(chans, asyncWait(w, job, WaitOptions{Logs: out}))
	}
	for range 25 {
		time.Sleep(400 * time.Millisecond)
		cluster.Proxy().CutAll()
	}
	checkRuns(t, want, chans)
	for i, out := range outs {
		// A retried run (backoff 1) logs once per pod.
		pods := 1 + int(want[i].backoff)
		if got, wantLog := out.String(), strings.Repeat(strings.Repeat("line\n", 50)+"last\n", pods); got != wantLog {
			t.Errorf("run %d: log of %d bytes, want %d", i, len(got), len(wantLog))
		}
	}
}

package clustertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestJobWithExitCode0Completes(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationExitCode: "0"}))
	waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
	pod := waitJobPod(t, client, ns, job.Name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if term := terminated(t, pod, "main"); term.ExitCode != 0 || term.Reason != "Completed" {
		t.Errorf("container main terminated with %d (%s), want 0 (Completed)", term.ExitCode, term.Reason)
	}
}

func TestJobWithExitCode3Fails(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationExitCode: "3"}))
	waitJobCondition(t, client, ns, job.Name, batchv1.JobFailed)
	pod := waitJobPod(t, client, ns, job.Name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := terminated(t, pod, "main"); term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("container main terminated with %d (%s), want 3 (Error)", term.ExitCode, term.Reason)
	}
}

func TestExitCodeCanBeSetPerContainer(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := newJob(map[string]string{AnnotationExitCode + ".main": "5"})
	job.Spec.Template.Spec.Containers = append(job.Spec.Template.Spec.Containers, corev1.Container{Name: "sidecar", Image: "example.com/proxy:1"})
	job = createJob(t, client, ns, job)
	pod := waitJobPod(t, client, ns, job.Name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := terminated(t, pod, "main"); term.ExitCode != 5 {
		t.Errorf("main exited %d, want 5", term.ExitCode)
	}
	if term := terminated(t, pod, "sidecar"); term.ExitCode != 0 {
		t.Errorf("sidecar exited %d, want 0", term.ExitCode)
	}
}

func TestDelayHoldsThePodRunningUntilChanged(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationDelay: "1h"}))
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0s"}}}`, AnnotationDelay)
	if _, err := client.CoreV1().Pods(ns).Patch(t.Context(), pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
}

func TestPodLogsAreServedAndFollowed(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationLog: "hello\nworld", AnnotationDelay: "1h"}))
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)

	logs, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main"}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	if got := string(logs); got != "hello\nworld\n" {
		t.Errorf("log = %q, want %q", got, "hello\nworld\n")
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow log: %v", err)
	}
	defer stream.Close()
	lines := bufio.NewScanner(stream)
	expect := func(want ...string) {
		t.Helper()
		for _, w := range want {
			if !lines.Scan() {
				t.Fatalf("follow stream ended (%v), want line %q", lines.Err(), w)
			}
			if got := lines.Text(); got != w {
				t.Fatalf("followed line %q, want %q", got, w)
			}
		}
	}
	expect("hello", "world")
	if err := cluster.AppendPodLog(ns, pod.Name, "main", "later 1", "later 2\nlater 3"); err != nil {
		t.Fatal(err)
	}
	expect("later 1", "later 2", "later 3")
}

func TestPodLogTimestampsIncreaseStrictly(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationDelay: "1h"}))
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	var lines []string
	for i := range 1000 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	if err := cluster.AppendPodLog(ns, pod.Name, "main", lines...); err != nil {
		t.Fatal(err)
	}
	logs, err := client.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", Timestamps: true}).DoRaw(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(logs), "\n"), "\n")
	if len(got) != len(lines) {
		t.Fatalf("got %d lines, want %d", len(got), len(lines))
	}
	var last string
	for i, l := range got {
		ts, text, _ := strings.Cut(l, " ")
		if text != lines[i] {
			t.Fatalf("line %d = %q, want %q", i, text, lines[i])
		}
		if last != "" && !timestampAfter(t, ts, last) {
			t.Fatalf("line %d: timestamp %s not after %s", i, ts, last)
		}
		last = ts
	}
}

func TestPartialLogLineEndsWithoutANewline(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationLog: "a\nb\nc", AnnotationLogPartial: "true", AnnotationDelay: "1h"}))
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	logs := client.CoreV1().Pods(ns)

	got, err := logs.GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main"}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	if string(got) != "a\nb\nc" {
		t.Errorf("log = %q, want %q", got, "a\nb\nc")
	}

	got, err = logs.GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", Timestamps: true}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("read log with timestamps: %v", err)
	}
	if strings.HasSuffix(string(got), "\n") {
		t.Errorf("log with timestamps %q ends with a newline", got)
	}
	entries := strings.Split(string(got), "\n")
	if len(entries) != 3 {
		t.Fatalf("log with timestamps %q: %d lines, want 3", got, len(entries))
	}
	for i, want := range []string{"a", "b", "c"} {
		ts, text, _ := strings.Cut(entries[i], " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || text != want {
			t.Errorf("line %d = %q, want a timestamp and %q", i, entries[i], want)
		}
	}

	// A follow stream gets the same bytes; what is appended next continues
	// the unfinished line.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := logs.GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow log: %v", err)
	}
	defer stream.Close()
	buf := make([]byte, len("a\nb\nc"))
	if _, err := io.ReadFull(stream, buf); err != nil {
		t.Fatalf("read followed log: %v", err)
	}
	if string(buf) != "a\nb\nc" {
		t.Errorf("followed log starts %q, want %q", buf, "a\nb\nc")
	}
	if err := cluster.AppendPodLog(ns, pod.Name, "main", "d"); err != nil {
		t.Fatal(err)
	}
	rest, err := bufio.NewReader(stream).ReadString('\n')
	if err != nil {
		t.Fatalf("read followed log: %v", err)
	}
	if rest != "d\n" {
		t.Errorf("followed log goes on %q after the partial line, want %q", rest, "d\n")
	}
}

func TestLongLogLineIsServedWhole(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	var b strings.Builder
	for i := 0; b.Len() < 20000; i++ {
		fmt.Fprintf(&b, "%d,", i)
	}
	long := b.String()[:20000]
	want := "before\n" + long + "\nafter\n"
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationLog: want, AnnotationDelay: "1h"}))
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	logs := client.CoreV1().Pods(ns)

	got, err := logs.GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main"}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	if string(got) != want {
		t.Errorf("log of %d bytes, want %d; lines %d, want 3", len(got), len(want), strings.Count(string(got), "\n"))
	}

	got, err = logs.GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", Timestamps: true}).DoRaw(t.Context())
	if err != nil {
		t.Fatalf("read log with timestamps: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("log with timestamps has %d lines, want 3", len(lines))
	}
	if _, text, _ := strings.Cut(lines[1], " "); text != long {
		t.Errorf("long line with timestamp: %d bytes of text, want %d", len(text), len(long))
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := logs.GetLogs(pod.Name, &corev1.PodLogOptions{Container: "main", Follow: true}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow log: %v", err)
	}
	defer stream.Close()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(stream, buf); err != nil {
		t.Fatalf("read followed log: %v", err)
	}
	if string(buf) != want {
		t.Error("followed log differs from the annotation")
	}
}

func TestAppendPodLogRefusesAnUnknownPod(t *testing.T) {
	t.Parallel()
	if err := cluster.AppendPodLog("nowhere", "no-pod", "main", "x"); err == nil {
		t.Error("append to a pod that does not exist: got no error")
	}
}

func timestampAfter(t *testing.T, a, b string) bool {
	t.Helper()
	ta, err := time.Parse(time.RFC3339Nano, a)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := time.Parse(time.RFC3339Nano, b)
	if err != nil {
		t.Fatal(err)
	}
	return ta.After(tb)
}

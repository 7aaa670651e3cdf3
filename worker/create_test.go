package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/manifest"
)

// fakeTimer fires at once and records each wait it was asked for.
type fakeTimer struct {
	mu    sync.Mutex
	waits []time.Duration
	c     chan time.Time
}

func (t *fakeTimer) Start(d time.Duration) {
	t.mu.Lock()
	t.waits = append(t.waits, d)
	t.mu.Unlock()
	t.c <- time.Time{}
}
func (t *fakeTimer) Stop()               {}
func (t *fakeTimer) C() <-chan time.Time { return t.c }
func newFakeTimer() *fakeTimer           { return &fakeTimer{c: make(chan time.Time, 1)} }
func (t *fakeTimer) recorded() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Duration(nil), t.waits...)
}

func testJob(runID string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "etl-", Namespace: "jobs", Labels: map[string]string{manifest.LabelRunID: runID}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "run", Image: "busybox"}},
		}}},
	}
}

func newTestCreator(client *fake.Clientset, timer *fakeTimer) *Creator {
	c := NewCreator(client, CreateOptions{})
	c.opts.timer = func() backoff.Timer { return timer }
	return c
}

// failCreates makes the first n Job creates fail with err; with stored, the
// Job is stored first, as when the answer to a Create is lost.
func failCreates(client *fake.Clientset, n int, err error, stored bool) *int {
	calls := 0
	client.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if calls > n {
			return false, nil, nil
		}
		if stored {
			obj := a.(k8stesting.CreateAction).GetObject()
			if err := client.Tracker().Create(schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, obj, "jobs"); err != nil {
				panic(err)
			}
		}
		return true, nil, err
	})
	return &calls
}

func countJobs(t *testing.T, client *fake.Clientset) int {
	t.Helper()
	list, err := client.BatchV1().Jobs("jobs").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func TestCreateNamesTheJobFromTheRunAndStampsTheSpecHash(t *testing.T) {
	client := fake.NewClientset()
	job := testJob("run-1")
	created, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if want := RunJobName("etl-", "run-1"); created.Name != want || created.GenerateName != "" {
		t.Errorf("name %q generateName %q, want %q and none", created.Name, created.GenerateName, want)
	}
	if created.Annotations[AnnotationSpecHash] != SpecHash(job) {
		t.Errorf("spec hash annotation %q, want %q", created.Annotations[AnnotationSpecHash], SpecHash(job))
	}
	if job.Name != "" || job.Annotations != nil {
		t.Error("Create changed its argument")
	}
}

func TestCreateRetries(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name      string
		err       error
		failures  int
		stored    bool // the failed Create did store the Job
		wantCalls int
		wantErr   bool
	}{
		{"a 500 is retried", apierrors.NewInternalError(errors.New("boom")), 1, false, 2, false},
		{"a 503 is retried", apierrors.NewServiceUnavailable("later"), 2, false, 3, false},
		{"a 429 is retried", apierrors.NewTooManyRequests("slow down", 0), 1, false, 2, false},
		{"a server timeout is retried", apierrors.NewServerTimeout(schema.GroupResource{Resource: "jobs"}, "create", 0), 1, false, 2, false},
		{"a dropped connection is retried", reset, 1, false, 2, false},
		{"an EOF is retried", io.ErrUnexpectedEOF, 1, false, 2, false},
		{"a lost answer is not repeated: the Job is adopted", reset, 1, true, 1, false},
		{"three failures exhaust the attempts", apierrors.NewInternalError(errors.New("boom")), 5, false, 3, true},
		{"a validation error is not retried", apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "x", nil), 5, false, 1, true},
		{"forbidden is not retried", apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "", errors.New("no")), 5, false, 1, true},
		{"a bad request is not retried", apierrors.NewBadRequest("bad"), 5, false, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			calls := failCreates(client, tt.failures, tt.err, tt.stored)
			_, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), testJob("run-1"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if *calls != tt.wantCalls {
				t.Errorf("%d creates, want %d", *calls, tt.wantCalls)
			}
			if want := map[bool]int{true: 0, false: 1}[tt.wantErr]; countJobs(t, client) != want {
				t.Errorf("%d Jobs, want %d", countJobs(t, client), want)
			}
			if tt.wantErr {
				var ce *CreateError
				if !errors.As(err, &ce) || !errors.Is(err, tt.err) {
					t.Errorf("got %T %v, want a *CreateError wrapping the API error", err, err)
				}
			}
		})
	}
}

func TestCreateWaitsDelayPlusJitterOrRetryAfter(t *testing.T) {
	client := fake.NewClientset()
	failCreates(client, 2, apierrors.NewTooManyRequests("slow down", 7), false)
	timer := newFakeTimer()
	c := newTestCreator(client, timer)
	if _, err := c.Create(context.Background(), testJob("r")); err != nil {
		t.Fatal(err)
	}
	for _, w := range timer.recorded() {
		if w != 7*time.Second {
			t.Errorf("waited %v, want the server's Retry-After of 7s (longer than 1s + up to 3s)", w)
		}
	}

	client = fake.NewClientset()
	failCreates(client, 2, apierrors.NewInternalError(errors.New("x")), false)
	timer = newFakeTimer()
	if _, err := newTestCreator(client, timer).Create(context.Background(), testJob("r")); err != nil {
		t.Fatal(err)
	}
	waits := timer.recorded()
	if len(waits) != 2 {
		t.Fatalf("%d waits, want 2", len(waits))
	}
	for _, w := range waits {
		if w < time.Second || w > 4*time.Second {
			t.Errorf("waited %v, want 1s fixed plus 0–3s jitter", w)
		}
	}
}

func TestCreateAdoptsOnlyTheRunsOwnJob(t *testing.T) {
	job := testJob("run-1")
	ours := job.DeepCopy()
	ours.Name, ours.GenerateName = RunJobName("etl-", "run-1"), ""
	ours.Annotations = map[string]string{AnnotationSpecHash: SpecHash(job)}

	t.Run("a Job of the same name, run and spec is adopted", func(t *testing.T) {
		client := fake.NewClientset(ours.DeepCopy())
		got, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), job)
		if err != nil || got.Name != ours.Name || countJobs(t, client) != 1 {
			t.Fatalf("got %v, %v; want the existing Job adopted", got, err)
		}
	})
	t.Run("a Job of the same name for another run is refused", func(t *testing.T) {
		other := ours.DeepCopy()
		other.Labels[manifest.LabelRunID] = "run-2"
		client := fake.NewClientset(other)
		_, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), job)
		if !errors.Is(err, ErrNameTaken) {
			t.Fatalf("got %v, want ErrNameTaken", err)
		}
	})
	t.Run("a Job for the run from another spec is refused", func(t *testing.T) {
		other := ours.DeepCopy()
		other.Annotations[AnnotationSpecHash] = "different"
		client := fake.NewClientset(other)
		_, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), job)
		if !errors.Is(err, ErrDuplicateRun) {
			t.Fatalf("got %v, want ErrDuplicateRun", err)
		}
	})
	t.Run("two Jobs for the run after a failure are refused", func(t *testing.T) {
		a, b := ours.DeepCopy(), ours.DeepCopy()
		a.Name, b.Name = "a", "b"
		client := fake.NewClientset(a, b)
		failCreates(client, 1, apierrors.NewInternalError(errors.New("x")), false)
		_, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), job)
		if !errors.Is(err, ErrDuplicateRun) || !strings.Contains(err.Error(), "2 Jobs") {
			t.Fatalf("got %v, want ErrDuplicateRun naming 2 Jobs", err)
		}
	})
}

// finderFunc is a RunFinder from a func.
type finderFunc func(ctx context.Context, namespace, runID string) ([]string, error)

func (f finderFunc) RunJobs(ctx context.Context, namespace, runID string) ([]string, error) {
	return f(ctx, namespace, runID)
}

func TestCreateFindsTheRunsJobUnderAnotherName(t *testing.T) {
	job := testJob("run-1")
	renamed := job.DeepCopy()
	renamed.Name, renamed.GenerateName = "renamed-by-another-template", ""
	renamed.Annotations = map[string]string{AnnotationSpecHash: SpecHash(job)}
	finder := finderFunc(func(_ context.Context, ns, runID string) ([]string, error) {
		if ns != job.Namespace || runID != "run-1" {
			return nil, nil
		}
		return []string{renamed.Name, "gone-since"}, nil
	})
	creator := func(client *fake.Clientset, f RunFinder) *Creator {
		c := newTestCreator(client, newFakeTimer())
		c.opts.Finder = f
		return c
	}

	t.Run("same spec: adopted", func(t *testing.T) {
		client := fake.NewClientset(renamed.DeepCopy())
		got, err := creator(client, finder).Create(context.Background(), job)
		if err != nil || got.Name != renamed.Name || countJobs(t, client) != 1 {
			t.Fatalf("got %v, %v; want the renamed Job adopted", got, err)
		}
	})
	t.Run("another spec: refused, nothing created", func(t *testing.T) {
		other := renamed.DeepCopy()
		other.Annotations[AnnotationSpecHash] = "different"
		client := fake.NewClientset(other)
		_, err := creator(client, finder).Create(context.Background(), job)
		var ce *CreateError
		if !errors.Is(err, ErrDuplicateRun) || !errors.As(err, &ce) || ce.RunID != "run-1" {
			t.Fatalf("got %v, want a *CreateError matching ErrDuplicateRun", err)
		}
		if n := countJobs(t, client); n != 1 {
			t.Errorf("%d Jobs, want only the renamed one", n)
		}
	})
	t.Run("a Job deleted since it was cached is passed over", func(t *testing.T) {
		client := fake.NewClientset()
		got, err := creator(client, finder).Create(context.Background(), job)
		if err != nil || got.Name != RunJobName(job.GenerateName, "run-1") {
			t.Fatalf("got %v, %v; want a new Job", got, err)
		}
	})
	t.Run("a failing finder is logged and passed over", func(t *testing.T) {
		client := fake.NewClientset()
		var log strings.Builder
		c := creator(client, finderFunc(func(context.Context, string, string) ([]string, error) {
			return nil, errors.New("forbidden")
		}))
		c.opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
		if _, err := c.Create(context.Background(), job); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "forbidden") || countJobs(t, client) != 1 {
			t.Errorf("log %q, %d Jobs; want a warning and the Job created", log.String(), countJobs(t, client))
		}
	})
}

func TestCreateErrorHints(t *testing.T) {
	jobs := schema.GroupResource{Group: "batch", Resource: "jobs"}
	tests := []struct {
		name, wantHint string
		err            error
		is             func(error) bool
	}{
		{"quota", "ResourceQuota", apierrors.NewForbidden(jobs, "x", errors.New(`exceeded quota: q, requested: count/jobs.batch=1, used: count/jobs.batch=1, limited: count/jobs.batch=1`)), apierrors.IsForbidden},
		{"rbac", "kubectl auth can-i create jobs", apierrors.NewForbidden(jobs, "", errors.New(`User "u" cannot create resource "jobs"`)), apierrors.IsForbidden},
		{"rbac on the adoption's get", "may not get jobs", apierrors.NewForbidden(jobs, "x", errors.New(`User "u" cannot get resource "jobs" in API group "batch"`)), apierrors.IsForbidden},
		{"missing namespace", `namespace "jobs" does not exist`, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "jobs"), apierrors.IsNotFound},
		{"no hint for others", "", apierrors.NewConflict(jobs, "x", errors.New("c")), apierrors.IsConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			failCreates(client, 1, tt.err, false)
			_, err := newTestCreator(client, newFakeTimer()).Create(context.Background(), testJob("r"))
			var ce *CreateError
			if !errors.As(err, &ce) {
				t.Fatalf("got %T, want *CreateError", err)
			}
			if (tt.wantHint == "") != (ce.Hint == "") || !strings.Contains(ce.Hint, tt.wantHint) {
				t.Errorf("hint %q, want one containing %q", ce.Hint, tt.wantHint)
			}
			var se *apierrors.StatusError
			if !errors.As(err, &se) || !tt.is(err) || ce.Reason != apierrors.ReasonForError(tt.err) {
				t.Errorf("the API status is not reachable: %v", err)
			}
		})
	}
}

func TestCreateStopsWhenTheContextEnds(t *testing.T) {
	client := fake.NewClientset()
	failCreates(client, 10, apierrors.NewInternalError(errors.New("x")), false)
	ctx, cancel := context.WithCancel(context.Background())
	c := NewCreator(client, CreateOptions{Delay: time.Hour, Attempts: 5})
	done := make(chan error)
	go func() { _, err := c.Create(ctx, testJob("r")); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestCreateRefusesAJobWithoutRunID(t *testing.T) {
	job := testJob("")
	_, err := NewCreator(fake.NewClientset(), CreateOptions{}).Create(context.Background(), job)
	if err == nil || !strings.Contains(err.Error(), manifest.LabelRunID) {
		t.Fatalf("got %v", err)
	}
}

func TestRunJobName(t *testing.T) {
	for _, prefix := range []string{"", "etl-", strings.Repeat("a", 62) + "-"} {
		for _, id := range []string{"r", "0b6f1c2e-8d1a-4f7e-9c55-3a2b1d0e9f10"} {
			n := RunJobName(prefix, id)
			if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
				t.Errorf("RunJobName(%q, %q) = %q: %v", prefix, id, n, msgs)
			}
			if n != RunJobName(prefix, id) {
				t.Errorf("RunJobName is not deterministic")
			}
		}
	}
	if RunJobName("etl-", "a") == RunJobName("etl-", "b") {
		t.Error("two runs got one name")
	}
}

func TestRetriable(t *testing.T) {
	gr := schema.GroupResource{Resource: "jobs"}
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{apierrors.NewInternalError(errors.New("x")), true},
		{apierrors.NewServiceUnavailable("x"), true},
		{apierrors.NewTooManyRequests("x", 1), true},
		{apierrors.NewServerTimeout(gr, "create", 1), true},
		{apierrors.NewTimeoutError("x", 1), true},
		{apierrors.NewGenericServerResponse(502, "POST", gr, "", "bad gateway", 0, true), true},
		{apierrors.NewBadRequest("x"), false},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Job"}, "x", nil), false},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{apierrors.NewUnauthorized("x"), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewConflict(gr, "x", errors.New("c")), false},
		{apierrors.NewAlreadyExists(gr, "x"), false},
		{io.EOF, true},
		{fmt.Errorf("post: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{errors.New("http2: client connection lost"), true},
		{fmt.Errorf(`Post "https://127.0.0.1/x": %w`, errors.New("http2: client connection force closed via ClientConn.Close")), true},
		{&url.Error{Op: "Get", URL: "https://127.0.0.1/x", Err: errors.New("http2: client conn could not be established")}, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{errors.New("something else"), false},
	}
	for _, tt := range tests {
		if got := Retriable(tt.err); got != tt.want {
			t.Errorf("Retriable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

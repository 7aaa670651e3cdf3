package jobcreate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// Helpers shared with worker's tests (see internal/jobtest).
var (
	fastRetry          = jobtest.FastRetry
	testJob            = jobtest.Job
	assertOneJobPerRun = jobtest.AssertOneJobPerRun
)

func newTestCreator(client *fake.Clientset) *Creator {
	return New(client, Options{Retry: fastRetry})
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
	created, err := newTestCreator(client).Create(context.Background(), job)
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
	forceClosed := &url.Error{Op: "Post", URL: "https://127.0.0.1/apis/batch/v1/namespaces/jobs/jobs", Err: errors.New("http2: client connection force closed via ClientConn.Close")}
	tests := []struct {
		name      string
		err       error
		failures  int
		stored    bool // the failed Create did store the Job
		wantCalls int
		wantGets  int
		wantErr   bool
	}{
		{"a 500 is retried", apierrors.NewInternalError(errors.New("boom")), 1, false, 2, 1, false},
		{"a 503 is retried", apierrors.NewServiceUnavailable("later"), 2, false, 3, 2, false},
		{"a 429 without Retry-After is retried, with no look-up: it was refused", apierrors.NewTooManyRequests("slow down", 0), 3, false, 4, 0, false},
		{"a 429 with Retry-After is retried", apierrors.NewTooManyRequests("slow down", 1), 1, false, 2, 0, false},
		{"a server timeout is retried", apierrors.NewServerTimeout(schema.GroupResource{Resource: "jobs"}, "create", 0), 1, false, 2, 1, false},
		{"a handler timeout is retried", apierrors.NewTimeoutError("request did not complete within 1m0s", 0), 1, false, 2, 1, false},
		{"a dropped connection is retried", reset, 1, false, 2, 1, false},
		{"a connection force-closed is retried", forceClosed, 1, false, 2, 1, false},
		{"an EOF is retried", io.ErrUnexpectedEOF, 1, false, 2, 1, false},
		{"many failures in a row are ridden out", apierrors.NewInternalError(errors.New("boom")), 12, false, 13, 12, false},
		{"a lost answer is not repeated: the Job is adopted by its name", reset, 1, true, 1, 1, false},
		{"a timed-out create that was stored is adopted by its name", apierrors.NewTimeoutError("handler timeout", 0), 1, true, 1, 1, false},
		{"a validation error is not retried", apierrors.NewInvalid(schema.GroupKind{Group: "batch", Kind: "Job"}, "x", nil), 5, false, 1, 0, true},
		{"forbidden is not retried", apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "", errors.New("no")), 5, false, 1, 0, true},
		{"a bad request is not retried", apierrors.NewBadRequest("bad"), 5, false, 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			calls := failCreates(client, tt.failures, tt.err, tt.stored)
			_, err := newTestCreator(client).Create(context.Background(), testJob("run-1"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if *calls != tt.wantCalls {
				t.Errorf("%d creates, want %d", *calls, tt.wantCalls)
			}
			gets, lists := requests(client)
			if gets != tt.wantGets || lists != 0 {
				t.Errorf("%d GETs and %d LISTs of Jobs, want %d GETs by name and no LIST", gets, lists, tt.wantGets)
			}
			if want := map[bool]int{true: 0, false: 1}[tt.wantErr]; countJobs(t, client) != want {
				t.Errorf("%d Jobs, want %d", countJobs(t, client), want)
			}
			if tt.wantErr {
				var ce *Error
				if !errors.As(err, &ce) || !errors.Is(err, tt.err) {
					t.Errorf("got %T %v, want a *Error wrapping the API error", err, err)
				}
			}
		})
	}
}

// requests counts the GETs and LISTs of Jobs the client was asked for.
func requests(client *fake.Clientset) (gets, lists int) {
	for _, a := range client.Actions() {
		if a.GetResource().Resource != "jobs" {
			continue
		}
		switch a.GetVerb() {
		case "get":
			gets++
		case "list":
			lists++
		}
	}
	return gets, lists
}

func TestCreateGivesUpAtTheDeadlineWithTheLastError(t *testing.T) {
	client := fake.NewClientset()
	failCreates(client, 1<<30, apierrors.NewServiceUnavailable("etcd is down"), false)
	c := New(client, Options{Retry: retry.Policy{Deadline: 100 * time.Millisecond, Initial: 10 * time.Millisecond}})
	_, err := c.Create(context.Background(), testJob("r"))
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, retry.ErrGaveUp) || !apierrors.IsServiceUnavailable(err) || ce.Attempts < 2 {
		t.Fatalf("got %v, want a *Error of several attempts matching retry.ErrGaveUp and the 503", err)
	}
}

func TestCreateRetriesTheAdoptionsGet(t *testing.T) {
	// The first create's answer is lost, and so is the answer to the
	// GET that would adopt its Job: the next attempt GETs again.
	client := fake.NewClientset()
	failCreates(client, 1, io.ErrUnexpectedEOF, true)
	gets := 0
	client.PrependReactor("get", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		if gets++; gets == 1 {
			return true, nil, apierrors.NewTooManyRequests("slow down", 0)
		}
		return false, nil, nil
	})
	got, err := newTestCreator(client).Create(context.Background(), testJob("run-1"))
	if err != nil || got.Name != RunJobName("etl-", "run-1") || countJobs(t, client) != 1 || gets != 2 {
		t.Fatalf("got %v, %v after %d GETs; want the Job adopted after 2", got, err, gets)
	}
}

func TestCreateAdoptsOnlyTheRunsOwnJob(t *testing.T) {
	job := testJob("run-1")
	ours := job.DeepCopy()
	ours.Name, ours.GenerateName = RunJobName("etl-", "run-1"), ""
	ours.Annotations = map[string]string{AnnotationSpecHash: SpecHash(job)}

	t.Run("a Job of the same name, run and spec is adopted", func(t *testing.T) {
		client := fake.NewClientset(ours.DeepCopy())
		got, err := newTestCreator(client).Create(context.Background(), job)
		if err != nil || got.Name != ours.Name || countJobs(t, client) != 1 {
			t.Fatalf("got %v, %v; want the existing Job adopted", got, err)
		}
	})
	t.Run("a Job of the same name for another run is refused", func(t *testing.T) {
		other := ours.DeepCopy()
		other.Labels[manifest.LabelRunID] = "run-2"
		client := fake.NewClientset(other)
		_, err := newTestCreator(client).Create(context.Background(), job)
		if !errors.Is(err, ErrNameTaken) {
			t.Fatalf("got %v, want ErrNameTaken", err)
		}
	})
	t.Run("a Job for the run from another spec is refused", func(t *testing.T) {
		other := ours.DeepCopy()
		other.Annotations[AnnotationSpecHash] = "different"
		client := fake.NewClientset(other)
		_, err := newTestCreator(client).Create(context.Background(), job)
		if !errors.Is(err, ErrDuplicateRun) {
			t.Fatalf("got %v, want ErrDuplicateRun", err)
		}
	})
	t.Run("after a lost answer, a Job of the run under another name in the index is adopted", func(t *testing.T) {
		renamed := ours.DeepCopy()
		renamed.Name = "renamed"
		client := fake.NewClientset()
		calls := 0
		client.PrependReactor("create", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			// Another worker of the run, whose template names Jobs
			// otherwise, got there first; our answer is lost.
			if calls++; calls == 1 {
				if err := client.Tracker().Add(renamed.DeepCopy()); err != nil {
					t.Error(err)
				}
				return true, nil, io.ErrUnexpectedEOF
			}
			return false, nil, nil
		})
		c := newTestCreator(client)
		index := 0
		c.opts.Finder = finderFunc(func(context.Context, string, string) ([]string, error) {
			if index++; index == 1 {
				return nil, nil // before the first attempt: nothing yet
			}
			return []string{"renamed"}, nil
		})
		got, err := c.Create(context.Background(), job)
		if _, lists := requests(client); lists != 0 {
			t.Errorf("%d LISTs of Jobs, want none", lists)
		}
		if err != nil || got.Name != "renamed" || countJobs(t, client) != 1 || calls != 1 {
			t.Fatalf("got %v, %v after %d creates; want the renamed Job adopted, no second create", got, err, calls)
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
		c := newTestCreator(client)
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
		var ce *Error
		if !errors.Is(err, ErrDuplicateRun) || !errors.As(err, &ce) || ce.RunID != "run-1" {
			t.Fatalf("got %v, want a *Error matching ErrDuplicateRun", err)
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
			_, err := newTestCreator(client).Create(context.Background(), testJob("r"))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %T, want *Error", err)
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
	c := New(client, Options{Retry: retry.Policy{Initial: time.Hour}})
	done := make(chan error)
	go func() { _, err := c.Create(ctx, testJob("r")); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestCreateRefusesAJobWithoutRunID(t *testing.T) {
	job := testJob("")
	_, err := New(fake.NewClientset(), Options{}).Create(context.Background(), job)
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

package worker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// fakeParts records the order in which a Worker calls its parts.
type fakeParts struct {
	mu        sync.Mutex
	calls     []string
	createErr error
	waitErr   error
	doneErr   error
}

func (f *fakeParts) note(s string) { f.mu.Lock(); f.calls = append(f.calls, s); f.mu.Unlock() }

func (f *fakeParts) Prepare(_ context.Context, run RunSpec) (*batchv1.Job, *manifest.Config, error) {
	f.note("prepare")
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", GenerateName: "x-", Labels: map[string]string{manifest.LabelRunID: run.ID}}}
	return job, &manifest.Config{PodWatchTimeoutSeconds: 7, JobWatchTimeoutSeconds: 9, StreamOutput: true}, nil
}

func (f *fakeParts) Apply(context.Context, *batchv1.Job) (func(context.Context, *batchv1.Job, error) error, error) {
	f.note("secrets")
	return func(_ context.Context, _ *batchv1.Job, err error) error {
		if err != nil {
			f.note("discard")
		} else {
			f.note("adopt")
		}
		return f.doneErr
	}, nil
}

func (f *fakeParts) Close(context.Context) error { f.note("close-secrets"); return nil }

func (f *fakeParts) Create(_ context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	f.note("create")
	if f.createErr != nil {
		return nil, f.createErr
	}
	j := job.DeepCopy()
	j.Name = "x-1"
	return j, nil
}

func (f *fakeParts) PID(_ context.Context, ns, name string) (clusterid.PID, error) {
	f.note("pid")
	return clusterid.PID{ClusterUID: "uid", Namespace: ns, Name: name}, nil
}

func (f *fakeParts) Kill(context.Context, clusterid.PID, time.Duration) error {
	f.note("kill")
	return nil
}

type fakeWaiter struct{ *fakeParts }

func (f fakeWaiter) Wait(ctx context.Context, ref jobwatch.JobRef, opts jobwatch.WaitOptions) (jobwatch.Result, error) {
	f.note("wait")
	if opts.PodStartTimeout != 7*time.Second || opts.Deadline != 9*time.Second {
		return jobwatch.Result{}, errors.New("the Config's timeouts did not reach Wait")
	}
	if f.waitErr != nil {
		<-ctx.Done()
		return jobwatch.Result{}, ctx.Err()
	}
	return jobwatch.Result{Outcome: jobwatch.Succeeded}, nil
}

func (f fakeWaiter) Close() { f.note("close-waiter") }

func fakeWorker(t *testing.T, f *fakeParts, opts Options) *Worker {
	t.Helper()
	opts.Parts.Preparer, opts.Parts.Creator, opts.Parts.Store, opts.Parts.Identity, opts.Parts.Waiter = f, f, f, f, fakeWaiter{f}
	w, err := New(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestRunCallsItsPartsInOrder(t *testing.T) {
	f := &fakeParts{}
	w := fakeWorker(t, f, Options{})
	var started clusterid.PID
	res, err := w.Run(t.Context(), RunSpec{ID: "r", Started: func(p clusterid.PID) { started = p; f.note("started") }})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "prepare secrets create adopt pid started wait" {
		t.Errorf("calls: %s", got)
	}
	if res.PID != started || res.PID.Name != "x-1" || res.Outcome != jobwatch.Succeeded {
		t.Errorf("result %+v, started %v", res, started)
	}
}

func TestRunDiscardsTheRunSecretWhenCreationFails(t *testing.T) {
	f := &fakeParts{createErr: errors.New("refused")}
	_, err := fakeWorker(t, f, Options{}).Run(t.Context(), RunSpec{ID: "r"})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("got %v", err)
	}
	if got := strings.Join(f.calls, " "); got != "prepare secrets create discard" {
		t.Errorf("calls: %s", got)
	}
}

func TestRunDeletesTheJobOnCancelOnlyWhenAsked(t *testing.T) {
	for _, del := range []bool{false, true} {
		f := &fakeParts{waitErr: errors.New("wait")}
		w := fakeWorker(t, f, Options{DeleteOnCancel: del})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := w.Run(ctx, RunSpec{ID: "r"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
		if killed := strings.Contains(strings.Join(f.calls, " "), "kill"); killed != del {
			t.Errorf("DeleteOnCancel %v: killed %v", del, killed)
		}
	}
}

func TestCloseStopsTheWorker(t *testing.T) {
	f := &fakeParts{}
	w := fakeWorker(t, f, Options{})
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.calls, " "); got != "close-waiter close-secrets" {
		t.Errorf("calls: %s", got)
	}
	if _, err := w.Run(t.Context(), RunSpec{ID: "r"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

func TestNewRefusesABadNameOrAMissingClient(t *testing.T) {
	if _, err := New(nil, Options{Name: "bad name!", Parts: Parts{Preparer: &fakeParts{}}}); err == nil {
		t.Error("a bad name was accepted")
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("no client and no parts was accepted")
	}
}

func TestStartReadsTheClusterUIDAndSyncsTheWorkersNamespaces(t *testing.T) {
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "c1"}})
	w, err := New(client, Options{Namespace: "a", Namespaces: []string{"b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range client.Actions() {
		switch {
		case a.Matches("get", "namespaces"):
			got["get namespaces"] = true
		case a.Matches("watch", "jobs"), a.Matches("watch", "pods"), a.Matches("list", "jobs"), a.Matches("list", "pods"):
			got[a.GetResource().Resource+" in "+a.GetNamespace()] = true
		}
	}
	for _, want := range []string{"get namespaces", "jobs in a", "pods in a", "jobs in b", "pods in b", "jobs in c", "pods in c"} {
		if !got[want] {
			t.Errorf("Start did not read %s; it read %v", want, got)
		}
	}
	if err := w.opts.Parts.Waiter.(*jobwatch.Watcher).Synced(); err != nil {
		t.Errorf("the streams are not synced after Start: %v", err)
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestStartReportsAClusterUIDItCannotRead(t *testing.T) {
	w, err := New(fake.NewClientset(), Options{Namespace: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(t.Context())
	if err := w.Start(t.Context()); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "worker: start") {
		t.Errorf("Start without a kube-system namespace = %v, want its NotFound", err)
	}
}

func TestStartSkipsPartsThatCannotBeReadied(t *testing.T) {
	w := fakeWorker(t, &fakeParts{}, Options{})
	if err := w.Start(t.Context()); err != nil {
		t.Errorf("Start with parts that have no UID or WaitForSync = %v", err)
	}
}

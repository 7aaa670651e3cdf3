package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

// agentParts are the parts of a worker that runs no Job: Wait calls wait,
// which decides how each run ends.
type agentParts struct {
	wait func(ctx context.Context, job jobwatch.JobRef) (jobwatch.Result, error)
}

func (f *agentParts) Prepare(_ context.Context, run worker.RunSpec) (*batchv1.Job, *manifest.Config, error) {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: run.ID}}, &manifest.Config{}, nil
}

func (f *agentParts) Create(_ context.Context, job *batchv1.Job) (*batchv1.Job, error) {
	return job, nil
}

func (f *agentParts) Apply(context.Context, *batchv1.Job) (func(context.Context, *batchv1.Job, error) error, error) {
	return func(context.Context, *batchv1.Job, error) error { return nil }, nil
}

func (f *agentParts) PID(_ context.Context, ns, name string) (clusterid.PID, error) {
	return clusterid.PID{ClusterUID: "uid", Namespace: ns, Name: name}, nil
}

func (f *agentParts) Kill(context.Context, clusterid.PID, time.Duration) error { return nil }

func (f *agentParts) Wait(ctx context.Context, job jobwatch.JobRef, _ jobwatch.WaitOptions) (jobwatch.Result, error) {
	if f.wait == nil {
		return jobwatch.Result{Outcome: jobwatch.Succeeded}, nil
	}
	return f.wait(ctx, job)
}

func (f *agentParts) Close() {}

// agentStore is agentParts as a SecretStore (whose Close differs from
// JobWaiter's).
type agentStore struct{ *agentParts }

func (s agentStore) Close(context.Context) error { return nil }

func newAgentWorker(t *testing.T, wait func(ctx context.Context, job jobwatch.JobRef) (jobwatch.Result, error)) *worker.Worker {
	t.Helper()
	f := &agentParts{wait: wait}
	w, err := worker.New(nil, worker.Options{Parts: worker.Parts{Preparer: f, Creator: f, Store: agentStore{f}, Identity: f, Waiter: f}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// agentScript is a Source that plays answers in order, then has nothing.
type agentScript struct {
	mu      sync.Mutex
	answers []agentAnswer
	polls   int
	onNext  func() // called on each Next, if set
}

type agentAnswer struct {
	id  string // "" is nothing to do
	err error
}

func (s *agentScript) Next(context.Context) (worker.RunSpec, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onNext != nil {
		s.onNext()
	}
	s.polls++
	if len(s.answers) == 0 {
		return worker.RunSpec{}, false, nil
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return worker.RunSpec{ID: a.id}, a.id != "", a.err
}

func (s *agentScript) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.polls }

// work returns n answers with work.
func agentWork(n int) []agentAnswer {
	out := make([]agentAnswer, n)
	for i := range out {
		out[i] = agentAnswer{id: "run-" + string(rune('a'+i))}
	}
	return out
}

// recordAgentWaits makes a's back-off instant and records it.
func recordAgentWaits(a *Agent) *[]time.Duration {
	var mu sync.Mutex
	waits := new([]time.Duration)
	a.wait = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*waits = append(*waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return waits
}

// agentReports collects Report calls.
type agentReports struct {
	mu   sync.Mutex
	errs map[string]error
	res  map[string]worker.Result
}

func (r *agentReports) report(run worker.RunSpec, res worker.Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs == nil {
		r.errs, r.res = map[string]error{}, map[string]worker.Result{}
	}
	r.errs[run.ID], r.res[run.ID] = err, res
}

func (r *agentReports) len() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.errs) }

func TestAgentStopsAfterMaxPollsAndWaitsForItsRuns(t *testing.T) {
	src := &agentScript{answers: append(agentWork(3), agentAnswer{}, agentAnswer{id: "run-z"})}
	var rep agentReports
	a := New(newAgentWorker(t, nil), src, Options{MaxPolls: 5, Report: rep.report})
	recordAgentWaits(a)
	if err := a.Serve(t.Context()); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if src.count() != 5 {
		t.Errorf("%d polls, want 5", src.count())
	}
	if rep.len() != 4 {
		t.Fatalf("%d runs reported, want 4: %v", rep.len(), rep.errs)
	}
	for id, err := range rep.errs {
		if err != nil || rep.res[id].Outcome != jobwatch.Succeeded || rep.res[id].PID.Name != id {
			t.Errorf("run %s: %+v, %v; want Succeeded with its PID", id, rep.res[id], err)
		}
	}
}

func TestAgentBacksOffFromMinToMaxAndResetsOnWork(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []agentAnswer
		polls   int
		want    []time.Duration
	}{
		{"doubles from 250ms and stops at 10s", nil, 9,
			[]time.Duration{250e6, 500e6, 1e9, 2e9, 4e9, 8e9, 10e9, 10e9}},
		{"resets to 250ms once work arrives", []agentAnswer{{}, {}, {}, {id: "a"}, {}, {}}, 8,
			[]time.Duration{250e6, 500e6, 1e9, 250e6, 500e6, 1e9}},
		{"backs off on a source error too", []agentAnswer{{err: errors.New("queue down")}, {err: errors.New("queue down")}, {id: "a"}, {}}, 6,
			[]time.Duration{250e6, 500e6, 250e6, 500e6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &agentScript{answers: tc.answers}
			a := New(newAgentWorker(t, nil), src, Options{MaxPolls: tc.polls})
			waits := recordAgentWaits(a)
			if err := a.Serve(t.Context()); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if !slices.Equal(*waits, tc.want) {
				t.Errorf("waits %v, want %v", *waits, tc.want)
			}
		})
	}
}

func TestAgentBackOffHonoursCustomBounds(t *testing.T) {
	a := New(newAgentWorker(t, nil), &agentScript{}, Options{MaxPolls: 5, MinBackoff: time.Second, MaxBackoff: 3 * time.Second})
	waits := recordAgentWaits(a)
	if err := a.Serve(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{1e9, 2e9, 3e9, 3e9}; !slices.Equal(*waits, want) {
		t.Errorf("waits %v, want %v", *waits, want)
	}
}

func TestAgentNeverRunsMoreThanConcurrencyAndDoesNotPollWhenFull(t *testing.T) {
	const limit, total = 3, 10
	var inflight, most atomic.Int32
	release := make(chan struct{})
	full := make(chan struct{}, total)
	w := newAgentWorker(t, func(ctx context.Context, _ jobwatch.JobRef) (jobwatch.Result, error) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == limit {
			full <- struct{}{}
		}
		<-release
		return jobwatch.Result{Outcome: jobwatch.Succeeded}, nil
	})
	var polledWhenFull atomic.Bool
	src := &agentScript{answers: agentWork(total), onNext: func() {
		if inflight.Load() >= limit {
			polledWhenFull.Store(true)
		}
	}}
	var rep agentReports
	a := New(w, src, Options{MaxPolls: total, Concurrency: limit, Report: rep.report})
	recordAgentWaits(a)
	done := make(chan error, 1)
	go func() { done <- a.Serve(t.Context()) }()
	<-full
	for range total {
		release <- struct{}{}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if most.Load() != limit {
		t.Errorf("at most %d runs at once, want %d", most.Load(), limit)
	}
	if polledWhenFull.Load() {
		t.Error("the agent polled while every run slot was taken")
	}
	if rep.len() != total {
		t.Errorf("%d runs reported, want %d", rep.len(), total)
	}
}

func TestAgentShutdownWaitsForRunsInFlight(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	var ctxErrAtEnd atomic.Value
	w := newAgentWorker(t, func(ctx context.Context, _ jobwatch.JobRef) (jobwatch.Result, error) {
		close(started)
		<-release
		ctxErrAtEnd.Store(ctx.Err() == nil)
		return jobwatch.Result{Outcome: jobwatch.Succeeded}, nil
	})
	var rep agentReports
	a := New(w, &agentScript{answers: agentWork(1)}, Options{Report: rep.report})
	recordAgentWaits(a)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	<-started
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v, want nil after a graceful stop", err)
	}
	if rep.len() != 1 || rep.errs["run-a"] != nil {
		t.Fatalf("agentReports %v when Serve returned, want run-a finished without error", rep.errs)
	}
	if ctxErrAtEnd.Load() != true {
		t.Error("the run's context was cancelled by the shutdown")
	}
}

func TestAgentCancelOnShutdownCancelsRunsInFlight(t *testing.T) {
	started := make(chan struct{})
	w := newAgentWorker(t, func(ctx context.Context, _ jobwatch.JobRef) (jobwatch.Result, error) {
		close(started)
		<-ctx.Done()
		return jobwatch.Result{}, ctx.Err()
	})
	var rep agentReports
	a := New(w, &agentScript{answers: agentWork(1)}, Options{CancelOnShutdown: true, Report: rep.report})
	recordAgentWaits(a)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v, want nil", err)
	}
	if err := rep.errs["run-a"]; !errors.Is(err, context.Canceled) {
		t.Errorf("run-a ended with %v, want context.Canceled", err)
	}
}

func TestAgentStopsWithErrClosedWhenTheWorkerIsClosed(t *testing.T) {
	w := newAgentWorker(t, nil)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	src := &agentScript{answers: agentWork(5)}
	a := New(w, src, Options{})
	recordAgentWaits(a)
	if err := a.Serve(t.Context()); !errors.Is(err, worker.ErrClosed) {
		t.Fatalf("Serve: %v, want worker.ErrClosed", err)
	}
	if err := a.Serve(t.Context()); err == nil {
		t.Error("a second Serve succeeded")
	}
}

func TestAgentRunsWhatItPollsAsJobsOnTheCluster(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, worker.Options{})
	src := &agentScript{answers: []agentAnswer{{id: "agent-1"}, {}, {id: "agent-2"}}}
	var rep agentReports
	a := New(w, src, Options{MaxPolls: 3, MinBackoff: time.Millisecond, Report: rep.report})
	if err := a.Serve(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rep.len() != 2 {
		t.Fatalf("%d runs reported, want 2", rep.len())
	}
	for id, err := range rep.errs {
		if res := rep.res[id]; err != nil || res.Outcome != jobwatch.Succeeded || res.PID.Namespace != ns {
			t.Errorf("run %s: %+v, %v; want Succeeded in %s", id, res, err, ns)
		}
	}
}

// syncingParts are agentParts whose Waiter is also a worker.Syncer.
type syncingParts struct {
	*agentParts
	sync func(ctx context.Context, namespaces ...string) error
}

func (p syncingParts) WaitForSync(ctx context.Context, namespaces ...string) error {
	return p.sync(ctx, namespaces...)
}

func (p syncingParts) Synced() error { return nil }

func TestAgentStartsTheWorkerBeforeItsFirstPoll(t *testing.T) {
	for _, fail := range []bool{false, true} {
		src := &agentScript{answers: agentWork(1)}
		var synced []string
		var pollsAtSync int
		f := &agentParts{}
		waiter := syncingParts{f, func(_ context.Context, namespaces ...string) error {
			synced, pollsAtSync = namespaces, src.count()
			if fail {
				return errors.New("watch refused")
			}
			return nil
		}}
		w, err := worker.New(nil, worker.Options{Namespace: "ns", Parts: worker.Parts{Preparer: f, Creator: f, Store: agentStore{f}, Identity: f, Waiter: waiter}})
		if err != nil {
			t.Fatal(err)
		}
		var rep agentReports
		a := New(w, src, Options{MaxPolls: 1, Report: rep.report})
		recordAgentWaits(a)
		if err := a.Serve(t.Context()); err != nil {
			t.Fatalf("Serve (start fails: %v): %v", fail, err)
		}
		if !slices.Equal(synced, []string{"ns"}) || pollsAtSync != 0 {
			t.Errorf("start fails: %v: synced %v after %d polls, want [ns] before any", fail, synced, pollsAtSync)
		}
		if rep.len() != 1 {
			t.Errorf("start fails: %v: %d runs reported, want 1: a failed Start does not stop the Agent", fail, rep.len())
		}
	}
}

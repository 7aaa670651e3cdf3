package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/worker"
)

// probe gets path from h and decodes the HealthStatus.
func probe(t *testing.T, h http.Handler, path string) (int, HealthStatus) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var st HealthStatus
	if rec.Code != http.StatusNotFound {
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatalf("GET %s: body %q: %v", path, rec.Body.String(), err)
		}
	}
	return rec.Code, st
}

// fakeClock makes a's health clock settable.
func fakeClock(a *Agent) *atomic.Int64 {
	now := new(atomic.Int64)
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	a.now = func() time.Time { return time.Unix(0, now.Load()) }
	return now
}

func TestHealthHandler(t *testing.T) {
	t.Run("liveness passes before Serve and readiness runs the given checks", func(t *testing.T) {
		a := New(newAgentWorker(t, nil), &agentScript{}, Options{})
		h := a.HealthHandler(map[string]Checker{
			"queue": func(context.Context) error { return errors.New("queue unreachable") },
			"db":    func(context.Context) error { return nil },
		})
		if code, st := probe(t, h, LivenessPath); code != http.StatusOK || st.Status != "ok" || st.Checks["agent"] != "ok" || len(st.Checks) != 1 {
			t.Errorf("/healthz: %d %+v, want 200 with the agent check only", code, st)
		}
		code, st := probe(t, h, ReadinessPath)
		if code != http.StatusServiceUnavailable || st.Status != "failed" {
			t.Errorf("/readyz: %d %+v, want 503 failed", code, st)
		}
		want := map[string]string{"agent": "ok", "db": "ok", "queue": "queue unreachable"}
		for k, v := range want {
			if st.Checks[k] != v {
				t.Errorf("/readyz check %s = %q, want %q", k, st.Checks[k], v)
			}
		}
		if code, _ := probe(t, h, "/other"); code != http.StatusNotFound {
			t.Errorf("/other: %d, want 404", code)
		}
	})

	t.Run("readiness passes when every check does", func(t *testing.T) {
		a := New(newAgentWorker(t, nil), &agentScript{}, Options{})
		h := a.HealthHandler(map[string]Checker{"db": func(context.Context) error { return nil }})
		if code, st := probe(t, h, ReadinessPath); code != http.StatusOK || st.Status != "ok" {
			t.Errorf("/readyz: %d %+v, want 200", code, st)
		}
	})

	t.Run("liveness fails when a poll wedges past the stall timeout", func(t *testing.T) {
		polling := make(chan struct{})
		src := SourceFunc(func(ctx context.Context) (worker.RunSpec, bool, error) {
			close(polling)
			<-ctx.Done()
			return worker.RunSpec{}, false, ctx.Err()
		})
		a := New(newAgentWorker(t, nil), src, Options{StallTimeout: time.Minute})
		now := fakeClock(a)
		h := a.HealthHandler(nil)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.Serve(ctx) }()
		<-polling
		if code, _ := probe(t, h, LivenessPath); code != http.StatusOK {
			t.Errorf("/healthz at the start of a poll: %d, want 200", code)
		}
		now.Add(int64(2 * time.Minute))
		code, st := probe(t, h, LivenessPath)
		if code != http.StatusServiceUnavailable || st.Checks["agent"] == "ok" {
			t.Errorf("/healthz two minutes into a poll: %d %+v, want 503", code, st)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if code, st := probe(t, h, LivenessPath); code != http.StatusServiceUnavailable || st.Checks["agent"] != errStopped.Error() {
			t.Errorf("/healthz after Serve returned: %d %+v, want 503 stopped", code, st)
		}
	})

	t.Run("liveness passes while every run slot is taken however long", func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		w := newAgentWorker(t, func(context.Context, jobwatch.JobRef) (jobwatch.Result, error) {
			close(started)
			<-release
			return jobwatch.Result{Outcome: jobwatch.Succeeded}, nil
		})
		a := New(w, &agentScript{answers: agentWork(1)}, Options{Concurrency: 1, MaxPolls: 2, StallTimeout: time.Minute})
		now := fakeClock(a)
		recordAgentWaits(a)
		h := a.HealthHandler(nil)
		done := make(chan error, 1)
		go func() { done <- a.Serve(t.Context()) }()
		<-started
		// The loop may not have reached its wait for a slot yet; wait
		// (bounded) until it has.
		for i := 0; !a.idle.Load(); i++ {
			if i == 5000 {
				t.Fatal("the loop never waited for a free slot")
			}
			time.Sleep(time.Millisecond)
		}
		now.Add(int64(time.Hour))
		if code, st := probe(t, h, LivenessPath); code != http.StatusOK {
			t.Errorf("/healthz an hour into a run with no free slot: %d %+v, want 200", code, st)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

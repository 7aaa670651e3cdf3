package metrics_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/metrics"
)

// server answers 404 for paths holding "missing", else 200 with the
// path.
type server struct{ *httptest.Server }

func newServer(t *testing.T) server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "missing") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, r.URL.Path)
	}))
	t.Cleanup(s.Close)
	return server{s}
}

// client returns an http.Client whose transport counts into rec.
func (s server) client(rec metrics.Recorder) *http.Client {
	return &http.Client{Transport: metrics.WrapTransport(rec)(s.Client().Transport)}
}

func (s server) get(t *testing.T, ctx context.Context, c *http.Client, path string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Error(err)
		return
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestTransportCountsEveryRequestAndChargesOnlyThoseOfARun(t *testing.T) {
	srv := newServer(t)
	rec := &requestLog{}
	client := srv.client(rec)

	var run metrics.RequestCount
	runCtx := metrics.WithRequestCount(t.Context(), &run)
	srv.get(t, runCtx, client, "/api/v1/namespaces/ns/pods/p/log")
	srv.get(t, runCtx, client, "/apis/batch/v1/namespaces/ns/jobs/missing")
	// A shared stream's watch runs on a context of its own.
	srv.get(t, t.Context(), client, "/apis/batch/v1/namespaces/ns/jobs?watch=true")
	// A context derived from the run's still charges the run; a count
	// set inside replaces it.
	derived, cancel := context.WithCancel(runCtx)
	defer cancel()
	srv.get(t, derived, client, "/api/v1/namespaces/ns/events")
	var inner metrics.RequestCount
	srv.get(t, metrics.WithRequestCount(derived, &inner), client, "/api/v1/namespaces/ns/pods")

	want := metrics.Requests{
		{Verb: "get", Resource: "pods/log"}: 1,
		{Verb: "get", Resource: "jobs"}:     1,
		{Verb: "list", Resource: "events"}:  1,
	}
	if got := run.Requests(); !equal(got, want) {
		t.Errorf("the run's requests: %v, want %v", got, want)
	}
	if got, want := inner.Requests(), (metrics.Requests{{Verb: "list", Resource: "pods"}: 1}); !equal(got, want) {
		t.Errorf("the inner count: %v, want %v", got, want)
	}
	for r, codes := range map[metrics.Request][]int{
		{Verb: "get", Resource: "pods/log"}: {200},
		{Verb: "get", Resource: "jobs"}:     {404},
		{Verb: "watch", Resource: "jobs"}:   {200},
		{Verb: "list", Resource: "events"}:  {200},
		{Verb: "list", Resource: "pods"}:    {200},
	} {
		if got := rec.get(r); len(got) != 1 || got[0] != codes[0] {
			t.Errorf("Recorder got %s with codes %v, want %v", r, got, codes)
		}
	}
}

func TestTransportCountsARequestWithoutAnAnswerAsCodeZero(t *testing.T) {
	srv := newServer(t)
	rec := &requestLog{}
	client := srv.client(rec)
	srv.Close() // connections refused from now on
	var run metrics.RequestCount
	req, _ := http.NewRequestWithContext(metrics.WithRequestCount(t.Context(), &run), http.MethodPost, srv.URL+"/apis/batch/v1/namespaces/ns/jobs", nil)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a request to a closed server succeeded")
	}
	create := metrics.Request{Verb: "create", Resource: "jobs"}
	if got := rec.get(create); len(got) != 1 || got[0] != 0 {
		t.Errorf("Recorder got codes %v for %s, want [0]", got, create)
	}
	if run.Total() != 1 {
		t.Errorf("the run's count is %d, want 1: a failed request is a request made", run.Total())
	}
}

func TestTransportWithoutRecorderStillCountsRuns(t *testing.T) {
	srv := newServer(t)
	client := srv.client(nil)
	var run metrics.RequestCount
	srv.get(t, metrics.WithRequestCount(t.Context(), &run), client, "/api/v1/namespaces/ns/pods")
	if run.Total() != 1 {
		t.Errorf("Total %d, want 1", run.Total())
	}
}

func TestTransportExposesTheWrappedOne(t *testing.T) {
	base := http.DefaultTransport
	rt := metrics.WrapTransport(nil)(base)
	w, ok := rt.(interface{ WrappedRoundTripper() http.RoundTripper })
	if !ok || w.WrappedRoundTripper() != base {
		t.Errorf("the counting transport does not expose the one it wraps")
	}
}

func TestWrappingTwiceCountsOncePerRecorderAndOncePerRun(t *testing.T) {
	srv := newServer(t)
	first, second := &requestLog{}, &requestLog{}
	rt := metrics.WrapTransport(second)(metrics.WrapTransport(first)(srv.Client().Transport))
	rt = metrics.WrapTransport(nil)(rt) // as kubeconfig.Load and then a caller
	client := &http.Client{Transport: rt}
	var run metrics.RequestCount
	srv.get(t, metrics.WithRequestCount(t.Context(), &run), client, "/api/v1/namespaces/ns/pods/p")
	get := metrics.Request{Verb: "get", Resource: "pods"}
	for name, rec := range map[string]*requestLog{"first": first, "second": second} {
		if got := rec.get(get); len(got) != 1 {
			t.Errorf("the %s Recorder got %s %d times, want once", name, get, len(got))
		}
	}
	if run.Total() != 1 {
		t.Errorf("the run's count is %d, want 1", run.Total())
	}
}

func TestWrappingTwiceWithTheSameRecorderCountsOnce(t *testing.T) {
	srv := newServer(t)
	rec := &requestLog{}
	rt := metrics.WrapTransport(rec)(metrics.WrapTransport(rec)(srv.Client().Transport))
	var run metrics.RequestCount
	srv.get(t, metrics.WithRequestCount(t.Context(), &run), &http.Client{Transport: rt}, "/api/v1/namespaces/ns/pods/p")
	if got := rec.get(metrics.Request{Verb: "get", Resource: "pods"}); len(got) != 1 {
		t.Errorf("the Recorder got the request %d times, want once", len(got))
	}
	if run.Total() != 1 {
		t.Errorf("the run's count is %d, want 1", run.Total())
	}
}

func TestARestConfigWrappedTwiceCountsOnce(t *testing.T) {
	// As kubeconfig.Load wraps a config and a caller wraps it again:
	// rest.Config.Wrap composes the wrappers, and the second sees the
	// first's transport.
	srv := newServer(t)
	first, second := &requestLog{}, &requestLog{}
	cfg := &rest.Config{Host: srv.URL}
	cfg.Wrap(metrics.WrapTransport(first))
	cfg.Wrap(metrics.WrapTransport(second))
	cfg.Wrap(metrics.WrapTransport(first))
	rt, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var run metrics.RequestCount
	srv.get(t, metrics.WithRequestCount(t.Context(), &run), &http.Client{Transport: rt}, "/apis/batch/v1/namespaces/ns/jobs")
	list := metrics.Request{Verb: "list", Resource: "jobs"}
	for name, rec := range map[string]*requestLog{"first": first, "second": second} {
		if got := rec.get(list); len(got) != 1 {
			t.Errorf("the %s Recorder got %s %d times, want once", name, list, len(got))
		}
	}
	if run.Total() != 1 {
		t.Errorf("the run's count is %d, want 1", run.Total())
	}
}

func TestACountingTransportUnderAnotherWrapperCountsAgain(t *testing.T) {
	// What WrapTransport's doc warns of: it cannot see through a wrapper
	// of another kind, so both layers count.
	srv := newServer(t)
	rec := &requestLog{}
	inner := metrics.WrapTransport(rec)(srv.Client().Transport)
	other := passThrough{inner}
	rt := metrics.WrapTransport(rec)(other)
	var run metrics.RequestCount
	srv.get(t, metrics.WithRequestCount(t.Context(), &run), &http.Client{Transport: rt}, "/api/v1/namespaces/ns/pods/p")
	if got := rec.get(metrics.Request{Verb: "get", Resource: "pods"}); len(got) != 2 {
		t.Errorf("the Recorder got the request %d times, want twice", len(got))
	}
	if run.Total() != 2 {
		t.Errorf("the run's count is %d, want 2", run.Total())
	}
}

// passThrough is a wrapper of another kind.
type passThrough struct{ rt http.RoundTripper }

func (p passThrough) RoundTrip(r *http.Request) (*http.Response, error) { return p.rt.RoundTrip(r) }

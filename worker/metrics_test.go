package worker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/metrics"
)

// runTally is a metrics.Recorder that keeps runs and requests.
type runTally struct {
	metrics.Discard
	mu       sync.Mutex
	started  int
	finished []string
	requests map[metrics.Request][]int
}

func (r *runTally) RunStarted() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
}

func (r *runTally) RunFinished(outcome string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, outcome)
}

func (r *runTally) APIRequest(req metrics.Request, code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests == nil {
		r.requests = map[metrics.Request][]int{}
	}
	r.requests[req] = append(r.requests[req], code)
}

func TestBeginRunCountsTheRunAndItsRequests(t *testing.T) {
	rec := &runTally{}
	ctx, m := beginRun(t.Context(), rec)
	if rec.started != 1 || len(rec.finished) != 0 {
		t.Fatalf("after beginRun: started %d, finished %v", rec.started, rec.finished)
	}
	c := metrics.RequestCountFrom(ctx)
	if c == nil {
		t.Fatal("the run's context carries no request count")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: metrics.WrapTransport(nil)(srv.Client().Transport)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/apis/batch/v1/namespaces/ns/jobs", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := m.end(jobwatch.OOMKilled)
	if want := (metrics.Requests{{Verb: "create", Resource: "jobs"}: 1}); len(got) != 1 || got[metrics.Request{Verb: "create", Resource: "jobs"}] != 1 {
		t.Errorf("end returned %v, want %v", got, want)
	}
	if rec.started != 1 || len(rec.finished) != 1 || rec.finished[0] != "OOMKilled" {
		t.Errorf("started %d, finished %v; want 1 and [OOMKilled]", rec.started, rec.finished)
	}
	// With no Recorder a run still counts its requests.
	ctx, m = beginRun(t.Context(), nil)
	if metrics.RequestCountFrom(ctx) == nil || m.end(jobwatch.Unknown).Total() != 0 {
		t.Errorf("beginRun without a Recorder: no count, or a count of requests never made")
	}
}

func TestConfigCountsRequestsInTheRecorderAndTheRun(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
	}))
	defer srv.Close()
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
current-context: a
clusters: [{name: a, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: a, context: {cluster: a, user: u}}]
`, srv.URL)
	for _, withRecorder := range []bool{true, false} {
		t.Run(fmt.Sprintf("recorder %v", withRecorder), func(t *testing.T) {
			rec := &runTally{}
			opts := kubeconfig.Options{Kubeconfig: []byte(kc)}
			if withRecorder {
				opts.Metrics = rec
			}
			cfg, err := Config(opts)
			if err != nil {
				t.Fatal(err)
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var run metrics.RequestCount
			_, err = client.BatchV1().Jobs("ns").Get(metrics.WithRequestCount(context.Background(), &run), "j", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Fatalf("Get: %v, want NotFound", err)
			}
			get := metrics.Request{Verb: "get", Resource: "jobs"}
			if run.Requests()[get] != 1 {
				t.Errorf("the run's count %v, want one get of jobs", run.Requests())
			}
			if codes := rec.requests[get]; withRecorder && (len(codes) != 1 || codes[0] != 404) {
				t.Errorf("the Recorder got %v for %s, want [404]", codes, get)
			}
		})
	}
}

package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/kubeworker/kubeworker/metrics"
)

// A run's requests are those made with a context carrying its count;
// the transport adds each request to the count it finds there. With a
// rest.Config: cfg.Wrap(metrics.WrapTransport(rec)).
func ExampleWithRequestCount() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: metrics.WrapTransport(nil)(http.DefaultTransport)}

	var run metrics.RequestCount
	ctx := metrics.WithRequestCount(context.Background(), &run)
	for _, path := range []string{
		"/apis/batch/v1/namespaces/jobs/jobs",            // create
		"/api/v1/namespaces/jobs/pods/run-1-x/log",       // the run's log
		"/api/v1/namespaces/jobs/pods/run-1-x/log",       // its reconnect
		"/apis/batch/v1/namespaces/jobs/jobs?watch=true", // a shared watch...
	} {
		method, reqCtx := http.MethodGet, ctx
		if path == "/apis/batch/v1/namespaces/jobs/jobs" {
			method = http.MethodPost
		}
		if path == "/apis/batch/v1/namespaces/jobs/jobs?watch=true" {
			reqCtx = context.Background() // ...runs on a context of its own
		}
		req, _ := http.NewRequestWithContext(reqCtx, method, srv.URL+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	reqs := run.Requests()
	fmt.Println("requests of the run:", reqs.Total())
	fmt.Println(metrics.Request{Verb: "get", Resource: "pods/log"}, reqs[metrics.Request{Verb: "get", Resource: "pods/log"}])
	fmt.Println(metrics.Request{Verb: "create", Resource: "jobs"}, reqs[metrics.Request{Verb: "create", Resource: "jobs"}])
	// Output:
	// requests of the run: 3
	// get pods/log 2
	// create jobs 1
}

package prom_test

import (
	"bufio"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

// A Recorder on a registry of one's own, served for scraping. Give the
// Recorder to worker.Options, kubeconfig.Options (or
// metrics.WrapTransport) and jobwatch.Options.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	rec, err := prom.New(reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	// What a Worker and its client record for one run:
	rec.RunStarted()
	rec.CreateAttempt(false)
	rec.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)
	rec.RunFinished("Succeeded")

	// GET /metrics, as Prometheus would.
	resp := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(resp, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "kubeworker_runs") || strings.HasPrefix(line, "kubeworker_api") {
			fmt.Println(line)
		}
	}
	// Output:
	// kubeworker_api_requests_total{cluster="",code="201",resource="jobs",verb="create"} 1
	// kubeworker_runs_finished_total{cluster="",outcome="Succeeded"} 1
	// kubeworker_runs_in_flight{cluster=""} 0
	// kubeworker_runs_queued{cluster=""} 0
	// kubeworker_runs_started_total{cluster=""} 1
}

// A Worker of two clusters gives each cluster's parts and transport
// the Recorder of that cluster; their series differ in the cluster
// label. New's own Recorder keeps cluster="".
func ExampleRecorder_ForCluster() {
	reg := prometheus.NewRegistry()
	rec, err := prom.New(reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	east, west := metrics.ForCluster(rec, "east"), metrics.ForCluster(rec, "west")
	east.RunStarted()
	east.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)
	west.RunStarted()
	west.RunStarted()
	west.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)
	west.APIRequest(metrics.Request{Verb: "create", Resource: "jobs"}, 201)

	resp := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(resp, httptest.NewRequest("GET", "/metrics", nil))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "kubeworker_runs_started") || strings.HasPrefix(line, "kubeworker_api") {
			fmt.Println(line)
		}
	}
	// Output:
	// kubeworker_api_requests_total{cluster="east",code="201",resource="jobs",verb="create"} 1
	// kubeworker_api_requests_total{cluster="west",code="201",resource="jobs",verb="create"} 2
	// kubeworker_runs_started_total{cluster=""} 0
	// kubeworker_runs_started_total{cluster="east"} 1
	// kubeworker_runs_started_total{cluster="west"} 2
}

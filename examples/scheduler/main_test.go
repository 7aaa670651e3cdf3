package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeworker/kubeworker/agent"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
)

var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
}

// TestSchedulerRunsTheSampleQueue runs the example as a user would, on the
// local cluster, and checks every run's outcome.
func TestSchedulerRunsTheSampleQueue(t *testing.T) {
	dir := t.TempDir()
	if err := writeSampleQueue(dir); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results, err := run(t.Context(), conn(t), dir, cluster.NewNamespace(t), 2, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		outcome jobwatch.Outcome
		exit    int
	}{
		"hello": {jobwatch.Succeeded, 0}, "fails": {jobwatch.Failed, 3}, "oom": {jobwatch.OOMKilled, 137},
		"slow": {jobwatch.Succeeded, 0}, "evicted": {jobwatch.Evicted, 137},
	}
	for id, w := range want {
		got, ok := results[id]
		if !ok {
			t.Errorf("run %s has no result", id)
			continue
		}
		if got.Outcome != w.outcome || got.ExitCode != w.exit {
			t.Errorf("run %s: %v exit %d, want %v exit %d", id, got.Outcome, got.ExitCode, w.outcome, w.exit)
		}
	}
}

// TestSchedulerServesMetricsAndHealth runs one run and reads the
// scheduler's /metrics, /readyz and /healthz over HTTP, as Prometheus and
// the kubelet's probes would.
func TestSchedulerServesMetricsAndHealth(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "01-hello.yaml"), []byte("id: hello\nname: hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s, err := newScheduler(conn(t), dir, cluster.NewNamespace(t), 1, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	srv := httptest.NewServer(s.handler()) // 127.0.0.1
	defer srv.Close()

	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before the run: %d %s", code, body)
	}
	results, err := s.run(t.Context())
	if err != nil || results["hello"].Outcome != jobwatch.Succeeded {
		t.Fatalf("run: %v, %+v\n%s", err, results, out.String())
	}

	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`kubeworker_job_create_attempts_total{cluster=""} 1`,
		// The one create counted once: the transport is wrapped once.
		`kubeworker_api_requests_total{cluster="",code="201",resource="jobs",verb="create"} 1` + "\n",
		`kubeworker_api_requests_total{cluster="",code="200",resource="jobs",verb="watch"}`,
		`kubeworker_api_requests_total{cluster="",code="200",resource="pods",verb="watch"}`,
		"# TYPE kubeworker_pod_start_latency_seconds histogram",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The Agent has stopped, so both probes fail on "agent"; the watch
	// streams are synced.
	code, body = get(t, srv.URL+"/readyz")
	var st agent.HealthStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/readyz: %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || st.Checks["watch"] != "ok" || st.Checks["agent"] == "ok" {
		t.Errorf("/readyz after the run: %d %+v; want 503 with watch ok and agent stopped", code, st)
	}
}

// conn is how the scheduler reaches the local cluster: its admin
// kubeconfig, as the command reads it.
func conn(t *testing.T) kubeconfig.Options {
	t.Helper()
	data, err := os.ReadFile(cluster.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig.Options{Kubeconfig: data}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

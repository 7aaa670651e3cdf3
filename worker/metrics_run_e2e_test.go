package worker

import (
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

// TestRunsAreCountedInTheRegistry: two runs through a Worker with a
// Prometheus Recorder move the run counters, read back through the
// registry, and each Result carries its own requests, the shared watches
// charged to neither.
func TestRunsAreCountedInTheRegistry(t *testing.T) {
	ns := cluster.NewNamespace(t)
	reg := prometheus.NewRegistry()
	rec, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := os.ReadFile(cluster.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := kubeconfig.Load(kubeconfig.Options{Kubeconfig: kc, Metrics: rec})
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Namespace: ns, Metrics: rec}
	opts.Prepare.Customizations = podAnnotations(map[string]string{clustertest.AnnotationExitCode: "3"})
	w, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(t.Context())
	for _, id := range []string{"metrics-1", "metrics-2"} {
		res, err := w.Run(t.Context(), RunSpec{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != jobwatch.Failed || res.ExitCode != 3 {
			t.Errorf("run %s: %s %d, want Failed 3", id, res.Outcome, res.ExitCode)
		}
		var creates, watches int
		for r, n := range res.Requests {
			switch {
			case r.Verb == "create" && r.Resource == "jobs":
				creates += n
			case r.Verb == "watch":
				watches += n
			}
		}
		if creates != 1 || watches != 0 {
			t.Errorf("run %s charged %d creates and %d watches, want 1 and 0: %v", id, creates, watches, res.Requests)
		}
	}
	want := `
# HELP kubeworker_runs_finished_total Runs that ended, by outcome (jobwatch.Outcome; Unknown when Run returned an error).
# TYPE kubeworker_runs_finished_total counter
kubeworker_runs_finished_total{cluster="",outcome="Failed"} 2
# HELP kubeworker_runs_started_total Runs a Worker started.
# TYPE kubeworker_runs_started_total counter
kubeworker_runs_started_total{cluster=""} 2
# HELP kubeworker_runs_in_flight Runs started and not yet finished.
# TYPE kubeworker_runs_in_flight gauge
kubeworker_runs_in_flight{cluster=""} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kubeworker_runs_started_total", "kubeworker_runs_finished_total", "kubeworker_runs_in_flight"); err != nil {
		t.Error(err)
	}
}

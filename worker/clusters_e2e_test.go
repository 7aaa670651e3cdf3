package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

// twoClusters is the worker's own cluster (the shared one) and a second,
// whole control plane started for these tests, each with namespace ns.
type twoClusters struct {
	b            *clustertest.Cluster
	ns           string
	uidA, uidB   string
	adminB       kubernetes.Interface
	kubeconfigB  map[string]any // B's kubeconfig as a cluster_config.config
	kubeconfigBy []byte
}

func startTwoClusters(t *testing.T) *twoClusters {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	b, err := clustertest.Start(ctx, clustertest.Options{})
	if err != nil {
		t.Fatalf("start a second cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("stop the second cluster: %v", err)
		}
	})
	tc := &twoClusters{b: b, ns: cluster.NewNamespace(t), adminB: kubernetes.NewForConfigOrDie(b.Config())}
	if _, err := tc.adminB.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tc.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if tc.kubeconfigBy, err = os.ReadFile(b.Kubeconfig()); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(tc.kubeconfigBy, &tc.kubeconfigB); err != nil {
		t.Fatal(err)
	}
	if tc.uidA, err = clusterid.New(adminClient(t), clusterid.Options{LookupEnv: noEnv}).UID(ctx); err != nil {
		t.Fatal(err)
	}
	if tc.uidB, err = clusterid.New(tc.adminB, clusterid.Options{LookupEnv: noEnv}).UID(ctx); err != nil {
		t.Fatal(err)
	}
	if tc.uidA == tc.uidB {
		t.Fatalf("both clusters have UID %s", tc.uidA)
	}
	return tc
}

// inB are values that send a run to cluster B.
func (tc *twoClusters) inB(extra map[string]any) map[string]any {
	v := map[string]any{"cluster_config": map[string]any{"config": tc.kubeconfigB}}
	for k, x := range extra {
		v[k] = x
	}
	return v
}

// jobsIn counts the Jobs in tc.ns of the cluster client reaches.
func (tc *twoClusters) jobsIn(t *testing.T, client kubernetes.Interface) int {
	t.Helper()
	list, err := client.BatchV1().Jobs(tc.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

// watchesOn returns the namespaced Job and pod watches B's API server
// serves: only a Worker's shared streams make them.
func (tc *twoClusters) watchesOnB(t *testing.T) float64 {
	t.Helper()
	n, err := scaletest.APIServerWatches(t.Context(), tc.adminB)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (tc *twoClusters) worker(t *testing.T, opts Options) *Worker {
	t.Helper()
	return newTestWorker(t, tc.ns, map[string]string{clustertest.AnnotationLog: "from $(WHERE)", clustertest.AnnotationDelay: "2s"}, opts)
}

// TestE2EManyClusters runs Jobs in a second local cluster from a worker
// of the first, as runs' cluster_config and Options.Clusters name it.
func TestE2EManyClusters(t *testing.T) {
	tc := startTwoClusters(t)

	t.Run("runs go to the cluster their cluster_config names, sharing its streams", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		rec, err := prom.New(reg)
		if err != nil {
			t.Fatal(err)
		}
		w := tc.worker(t, Options{RunClusters: RunClusters{Allow: true, IdleTimeout: time.Hour}, Metrics: rec})
		const runs = 5
		results := make([]Result, runs)
		logs := make([]bytes.Buffer, runs)
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() {
				var err error
				results[i], err = w.Run(t.Context(), RunSpec{ID: fmt.Sprintf("b-%d", i), Logs: &logs[i],
					Values: tc.inB(map[string]any{"env": map[string]any{"WHERE": "b"}})})
				if err != nil {
					t.Errorf("run %d: %v", i, err)
				}
			})
		}
		// While the runs go, B serves the worker two watches (Jobs, pods
		// of ns), however many runs there are.
		waitFor(t, "2 watches on B", func() bool { return tc.watchesOnB(t) == 2 })
		wg.Wait()
		for i, res := range results {
			if res.Outcome != jobwatch.Succeeded || res.Cluster != tc.uidB || res.PID.ClusterUID != tc.uidB {
				t.Errorf("run %d: outcome %v, cluster %q, PID %s; want Succeeded in %s", i, res.Outcome, res.Cluster, res.PID, tc.uidB)
			}
			if got := logs[i].String(); got != "from b\n" {
				t.Errorf("run %d: log %q", i, got)
			}
		}
		if a, b := tc.jobsIn(t, adminClient(t)), tc.jobsIn(t, tc.adminB); a != 0 || b != runs {
			t.Errorf("Jobs: %d in the worker's own cluster, %d in B; want 0 and %d", a, b, runs)
		}
		if n := tc.watchesOnB(t); n != 2 {
			t.Errorf("%v watches on B after the runs, want 2 (kept for IdleTimeout)", n)
		}
		// The metrics say which cluster: B's runs under its UID.
		if got := sampleOf(t, reg, "kubeworker_runs_finished_total", map[string]string{"cluster": tc.uidB, "outcome": "Succeeded"}); got != runs {
			t.Errorf("runs_finished_total{cluster=B} = %v, want %d", got, runs)
		}
		if got := sampleOf(t, reg, "kubeworker_api_requests_total", map[string]string{"cluster": tc.uidB, "verb": "create", "resource": "jobs", "code": "201"}); got != runs {
			t.Errorf("Job creates in B = %v, want %d", got, runs)
		}

		// Kill routes by the PID's cluster.
		res, err := w.Run(t.Context(), RunSpec{ID: "b-kill", Values: tc.inB(nil), Started: func(pid clusterid.PID) {
			if err := w.Kill(t.Context(), pid, 0); err != nil {
				t.Errorf("Kill %s: %v", pid, err)
			}
		}})
		if err != nil || res.Outcome != jobwatch.Deleted {
			t.Errorf("killed run: %v, %v; want Deleted", res.Outcome, err)
		}
	})

	t.Run("a run's cluster unused for IdleTimeout is let go and comes back", func(t *testing.T) {
		w := tc.worker(t, Options{RunClusters: RunClusters{Allow: true, IdleTimeout: 300 * time.Millisecond}})
		for i := range 2 {
			res, err := w.Run(t.Context(), RunSpec{ID: fmt.Sprintf("idle-%d", i), Values: tc.inB(map[string]any{"env": map[string]any{"WHERE": "b"}})})
			if err != nil || res.Outcome != jobwatch.Succeeded {
				t.Fatalf("run %d: %v, %v", i, res.Outcome, err)
			}
			waitFor(t, "B's watches closed", func() bool { return tc.watchesOnB(t) == 0 })
			if i == 1 {
				// Let go, B is still found by the PID's UID.
				if err := w.Kill(t.Context(), res.PID, 0); err != nil {
					t.Errorf("Kill after B was let go: %v", err)
				}
			}
		}
	})

	t.Run("a let-go keeps the API-key Secret for the runs after it; Close deletes it", func(t *testing.T) {
		w := tc.worker(t, Options{Name: "apikey", RunClusters: RunClusters{Allow: true, IdleTimeout: 300 * time.Millisecond},
			Secrets: SecretsOptions{APIKey: true}})
		secret := "kubeworker-apikey-api-key"
		for i := range 2 {
			res, err := w.Run(t.Context(), RunSpec{ID: fmt.Sprintf("apikey-%d", i), Values: tc.inB(nil),
				Env: map[string]string{"WHERE": "b", "KUBEWORKER_API_KEY": "k3y"}})
			if err != nil || res.Outcome != jobwatch.Succeeded {
				t.Fatalf("run %d: %v, %v", i, res.Outcome, err)
			}
			waitFor(t, "B let go", func() bool { return tc.watchesOnB(t) == 0 })
			if _, err := tc.adminB.CoreV1().Secrets(tc.ns).Get(t.Context(), secret, metav1.GetOptions{}); err != nil {
				t.Fatalf("after run %d and the let-go: the API-key Secret: %v", i, err)
			}
		}
		if err := w.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.adminB.CoreV1().Secrets(tc.ns).Get(t.Context(), secret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("after Close: the API-key Secret: %v, want NotFound", err)
		}
	})

	t.Run("secrets and preflight happen in the run's cluster", func(t *testing.T) {
		w := tc.worker(t, Options{Name: "secrets", RunClusters: RunClusters{Allow: true}, Secrets: SecretsOptions{Env: true},
			Clusters: []Cluster{{Name: "b", Kubeconfig: tc.kubeconfigBy}}})
		res, err := w.Run(t.Context(), RunSpec{ID: "secret-b", Env: map[string]string{"WHERE": "b", "TOKEN": "s3cr3t-value"}, Values: tc.inB(nil)})
		if err != nil || res.Outcome != jobwatch.Succeeded || res.Cluster != "b" {
			t.Fatalf("run: %v in %q, %v; want Succeeded in b (its kubeconfig connects as b)", res.Outcome, res.Cluster, err)
		}
		job, err := tc.adminB.BatchV1().Jobs(tc.ns).Get(t.Context(), res.PID.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := job.Marshal(); bytes.Contains(data, []byte("s3cr3t-value")) {
			t.Error("the secret value is in the Job spec")
		}
		owned := 0
		secrets, err := tc.adminB.CoreV1().Secrets(tc.ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, sec := range secrets.Items {
			for _, o := range sec.OwnerReferences {
				if o.UID == job.UID {
					owned++
				}
			}
		}
		if owned != 1 {
			t.Errorf("%d Secrets in B owned by the run's Job, want 1", owned)
		}

		for name, opts := range map[string]PreflightOptions{"by values": {Values: tc.inB(nil)}, "by name": {Cluster: "b"}} {
			rep, err := w.Preflight(t.Context(), opts)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// B's kubeconfig connects as cluster "b" does: it is "b".
			wantName := "b"
			if rep.Cluster != wantName || !rep.OK() {
				t.Errorf("Preflight %s: cluster %q, %v; want %q, OK", name, rep.Cluster, rep.Err(), wantName)
			}
		}
		if _, err := w.Preflight(t.Context(), PreflightOptions{Cluster: "c"}); err == nil || !strings.Contains(err.Error(), `"c"`) {
			t.Errorf("Preflight of an unknown cluster: %v", err)
		}
	})

	t.Run("a restarted worker finds runs in clusters given up front", func(t *testing.T) {
		first := tc.worker(t, Options{Name: "upfront", RunClusters: RunClusters{Allow: true}})
		pids := map[string]clusterid.PID{}
		for _, where := range []string{"a", "b"} {
			values := map[string]any{"env": map[string]any{"WHERE": where}}
			if where == "b" {
				values = tc.inB(values)
			}
			res, err := first.Run(t.Context(), RunSpec{ID: "upfront-" + where, Values: values})
			if err != nil {
				t.Fatal(err)
			}
			pids[where] = res.PID
		}

		// Without B, its PID is refused, naming the UID; nothing is sent.
		alone := tc.worker(t, Options{Name: "upfront"})
		_, err := alone.Attach(t.Context(), pids["b"], AttachOptions{})
		var uc *UnknownClusterError
		if !errors.As(err, &uc) || !errors.Is(err, clusterid.ErrWrongCluster) || uc.PID.ClusterUID != tc.uidB || !strings.Contains(err.Error(), tc.uidB) {
			t.Errorf("Attach of B's PID without B: %v; want an *UnknownClusterError naming %s", err, tc.uidB)
		}
		if err := alone.Kill(t.Context(), pids["b"], 0); !errors.Is(err, ErrUnknownCluster) {
			t.Errorf("Kill of B's PID without B: %v; want ErrUnknownCluster", err)
		}

		// With B up front: Start and Ready cover it, Attach, List and
		// Sweep reach it.
		again := tc.worker(t, Options{Name: "upfront", Clusters: []Cluster{{Name: "b", Config: tc.b.Config()}}})
		if err := again.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := again.Ready(); err != nil {
			t.Errorf("Ready: %v", err)
		}
		res, err := again.Attach(t.Context(), pids["b"], AttachOptions{})
		if err != nil || res.Cluster != "b" || res.Outcome != jobwatch.Succeeded || res.RunID != "upfront-b" {
			t.Errorf("Attach in B: %+v, %v", res, err)
		}
		runs, err := again.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range runs {
			got[r.RunID] = r.Cluster
		}
		if want := map[string]string{"upfront-a": "", "upfront-b": "b"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("List: %v, want %v", got, want)
		}

		// A restarted worker that allows run clusters finds B from the
		// run's values.
		byValues := tc.worker(t, Options{Name: "upfront", RunClusters: RunClusters{Allow: true}})
		res, err = byValues.Attach(t.Context(), pids["b"], AttachOptions{Values: tc.inB(nil)})
		if err != nil || res.Cluster != tc.uidB || res.Outcome != jobwatch.Succeeded {
			t.Errorf("Attach with the run's values: %+v, %v", res, err)
		}
		report, err := again.Sweep(t.Context(), func(string) bool { return false }, SweepOptions{Grace: -1})
		if err != nil || len(report.Deleted) != 2 {
			t.Errorf("Sweep deleted %v, %v; want both runs", report.Deleted, err)
		}

		// A run's cluster_config with only a context_name picks a
		// cluster given up front, with no per-run clusters allowed.
		res, err = again.Run(t.Context(), RunSpec{ID: "by-name", Values: map[string]any{
			"cluster_config": map[string]any{"context_name": "b"}, "env": map[string]any{"WHERE": "b"}}})
		if err != nil || res.Cluster != "b" || res.PID.ClusterUID != tc.uidB || res.Outcome != jobwatch.Succeeded {
			t.Errorf("run to cluster b by name: %+v, %v", res, err)
		}
	})

	t.Run("a cluster given up front that does not answer fails Start and Ready, by name", func(t *testing.T) {
		cfg := *tc.b.Config()
		cfg.Host = "https://127.0.0.1:1"
		w := tc.worker(t, Options{Clusters: []Cluster{{Name: "gone", Config: &cfg}}})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := w.Start(ctx); err == nil || !strings.Contains(err.Error(), `"gone"`) {
			t.Errorf("Start: %v, want an error naming cluster \"gone\"", err)
		}
		if err := w.Ready(); err == nil || !strings.Contains(err.Error(), `"gone"`) {
			t.Errorf("Ready: %v, want an error naming cluster \"gone\"", err)
		}
	})

	t.Run("no Job anywhere for a cluster_config the worker refuses", func(t *testing.T) {
		exec := tc.inB(nil)
		cc := exec["cluster_config"].(map[string]any)
		kc := copyKubeconfigWithExec(t, tc.kubeconfigB)
		cc["config"] = kc
		for _, c := range []struct {
			name   string
			opts   Options
			values map[string]any
			want   error
			text   string
		}{
			{"per-run clusters off", Options{}, tc.inB(nil), ErrRunClustersOff, "cluster_config"},
			{"an exec plugin", Options{RunClusters: RunClusters{Allow: true}}, exec, kubeconfig.ErrUntrusted, "exec"},
			{"a context that does not exist", Options{RunClusters: RunClusters{Allow: true}},
				map[string]any{"cluster_config": map[string]any{"config": tc.kubeconfigB, "context_name": "nope"}}, nil, "nope"},
		} {
			w := tc.worker(t, c.opts)
			_, err := w.Run(t.Context(), RunSpec{ID: "refused", Values: c.values})
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.text) {
				t.Errorf("%s: %v; want %v naming %s", c.name, err, c.want, c.text)
			}
		}
		if a, b := jobsPerRun(t, tc.ns)["refused"], jobsOfRun(t, tc.adminB, tc.ns, "refused"); a != 0 || b != 0 {
			t.Errorf("refused runs made %d Jobs in A and %d in B", a, b)
		}
	})
}

// copyKubeconfigWithExec returns kc with an exec plugin for its users.
func copyKubeconfigWithExec(t *testing.T, kc map[string]any) map[string]any {
	t.Helper()
	raw, err := yaml.Marshal(kc)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	for _, u := range out["users"].([]any) {
		u.(map[string]any)["user"] = map[string]any{"exec": map[string]any{
			"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh", "args": []any{"-c", "touch /tmp/pwned"},
		}}
	}
	return out
}

func jobsOfRun(t *testing.T, client kubernetes.Interface, ns, runID string) int {
	t.Helper()
	return jobtest.JobsPerRun(t, client, ns)[runID]
}

// waitFor polls cond until it holds, or fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

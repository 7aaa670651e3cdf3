package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// startKueue starts Kueue on the shared cluster (once; later calls
// return at once).
func startKueue(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := cluster.StartKueue(ctx); err != nil {
		t.Fatalf("start Kueue: %v", err)
	}
}

// kueueReasons returns the reasons of the Kueue events of res, in order.
func kueueReasons(res Result) []string {
	if res.Queue == nil {
		return nil
	}
	var out []string
	for _, e := range res.Queue.Events {
		out = append(out, e.Reason)
	}
	return out
}

// TestE2EKueue runs through the real Kueue controller: runs wait for
// quota without their pod start timeout firing, a preempted run is
// requeued and ends Succeeded, a run to a LocalQueue that does not exist
// ends NotAdmitted at once, and Preflight reads the LocalQueue.
func TestE2EKueue(t *testing.T) {
	startKueue(t)

	t.Run("five runs, quota for two: all Succeeded, three of them waited", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		if err := cluster.AddQueue(t.Context(), clustertest.QueueOptions{Namespace: ns, LocalQueue: "q", CPU: "2"}); err != nil {
			t.Fatal(err)
		}
		w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationDelay: "3s"}, Options{})
		const runs = 5
		results := make([]Result, runs)
		var wg sync.WaitGroup
		for i := range runs {
			wg.Go(func() {
				var err error
				// A pod start timeout of 2 s: it would fire while a run
				// waits for quota if it counted from creation.
				results[i], err = w.Run(t.Context(), RunSpec{ID: fmt.Sprintf("q-%d", i), Values: map[string]any{
					"queue_name": "q", "cpu_request": "1", "pod_watch_timeout_seconds": 2}})
				if err != nil {
					t.Errorf("run %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		waited := 0
		for i, res := range results {
			if res.Outcome != jobwatch.Succeeded {
				t.Errorf("run %d: %v (%s), want Succeeded; Kueue events %v", i, res.Outcome, res.Message, kueueReasons(res))
				continue
			}
			if res.Queue == nil || res.Queue.LocalQueue != "q" || res.Queue.ClusterQueue == "" || res.Queue.AdmittedAt.IsZero() {
				t.Errorf("run %d: queueing %+v, want admitted from q", i, res.Queue)
				continue
			}
			if !slices.Contains(kueueReasons(res), jobwatch.ReasonAdmitted) {
				t.Errorf("run %d: Kueue events %v, want Admitted among them", i, kueueReasons(res))
			}
			if res.Queue.Waited > 2*time.Second {
				waited++
			}
			t.Logf("run %d waited %s for admission", i, res.Queue.Waited)
		}
		if waited < 2 {
			t.Errorf("%d runs waited over 2 s for quota; with quota for 2 of 5 three-second runs, at least 2 must", waited)
		}
		assertOneJobPerRun(t, jobsPerRun(t, ns), runs)
	})

	t.Run("a preempted run is requeued, admitted again and ends Succeeded", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		for name, value := range map[string]int32{ns + "-low": 100, ns + "-high": 1000} {
			if err := cluster.AddWorkloadPriorityClass(t.Context(), name, value); err != nil {
				t.Fatal(err)
			}
		}
		if err := cluster.AddQueue(t.Context(), clustertest.QueueOptions{Namespace: ns, LocalQueue: "q", CPU: "1", Preemption: "LowerPriority"}); err != nil {
			t.Fatal(err)
		}
		w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationDelay: "6s"}, Options{})
		low := make(chan Result, 1)
		running := make(chan clusterid.PID, 1)
		go func() {
			res, err := w.Run(t.Context(), RunSpec{ID: "low", Started: func(p clusterid.PID) { running <- p },
				Values: map[string]any{"queue_name": "q", "priority_class": ns + "-low", "cpu_request": "1"}})
			if err != nil {
				t.Errorf("low: %v", err)
			}
			low <- res
		}()
		<-running
		waitFor(t, "the low run's pod running", func() bool {
			pods, err := adminClient(t).CoreV1().Pods(ns).List(t.Context(), metav1ListRun("low"))
			return err == nil && len(pods.Items) == 1 && pods.Items[0].Status.Phase == "Running"
		})
		high, err := w.Run(t.Context(), RunSpec{ID: "high", Values: map[string]any{"queue_name": "q", "priority_class": ns + "-high", "cpu_request": "1"}})
		if err != nil || high.Outcome != jobwatch.Succeeded {
			t.Fatalf("high: %v, %v", high.Outcome, err)
		}
		res := <-low
		if res.Outcome != jobwatch.Succeeded || res.Queue == nil || res.Queue.Preemptions < 1 {
			t.Fatalf("low: %v, queueing %+v; want Succeeded after a preemption", res.Outcome, res.Queue)
		}
		reasons := kueueReasons(res)
		if i, j := slices.Index(reasons, jobwatch.ReasonPreempted), slices.Index(reasons, jobwatch.ReasonAdmitted); i < 0 || j < 0 || i < j ||
			!slices.Contains(reasons[i:], jobwatch.ReasonAdmitted) {
			t.Errorf("low's Kueue events %v: want Admitted, Preempted, then Admitted again", reasons)
		}
		assertOneJobPerRun(t, jobsPerRun(t, ns), 2)
	})

	t.Run("a LocalQueue that does not exist: NotAdmitted at once, and Preflight says so", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		w := newTestWorker(t, ns, nil, Options{})
		start := time.Now()
		res, err := w.Run(t.Context(), RunSpec{ID: "nowhere", Values: map[string]any{"queue_name": "nope", "pod_watch_timeout_seconds": 600}})
		if err != nil || res.Outcome != jobwatch.NotAdmitted || res.Diagnosis == nil || !strings.Contains(res.Diagnosis.Message, "nope") {
			t.Fatalf("run to a missing LocalQueue: %v, %+v, %v; want NotAdmitted naming it", res.Outcome, res.Diagnosis, err)
		}
		t.Logf("NotAdmitted after %s: %s", time.Since(start), res.Diagnosis.Message)

		rep, err := w.Preflight(t.Context(), PreflightOptions{Values: map[string]any{"queue_name": "nope"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rejections) != 1 || rep.Rejections[0].Object != "LocalQueue" || !strings.Contains(rep.Rejections[0].Message, "nope") {
			t.Errorf("Preflight: %v; want one LocalQueue rejection naming it", rep.Err())
		}
		if err := cluster.AddQueue(t.Context(), clustertest.QueueOptions{Namespace: ns, LocalQueue: "nope"}); err != nil {
			t.Fatal(err)
		}
		if rep, err := w.Preflight(t.Context(), PreflightOptions{Values: map[string]any{"queue_name": "nope"}}); err != nil || !rep.OK() {
			t.Errorf("Preflight once the queue exists: %v, %v", rep.Err(), err)
		}
	})

	t.Run("a run never admitted ends NotAdmitted at its queue timeout", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		if err := cluster.AddQueue(t.Context(), clustertest.QueueOptions{Namespace: ns, LocalQueue: "q", CPU: "1"}); err != nil {
			t.Fatal(err)
		}
		w := newTestWorker(t, ns, nil, Options{})
		res, err := w.Run(t.Context(), RunSpec{ID: "too-big", Values: map[string]any{"queue_name": "q", "cpu_request": "2", "queue_timeout_seconds": 3}})
		if err != nil || res.Outcome != jobwatch.NotAdmitted || res.Outcome.Fault() != jobwatch.FaultInfrastructure {
			t.Fatalf("run over quota: %v (%v), %v; want NotAdmitted, an infrastructure fault", res.Outcome, res.Diagnosis, err)
		}
	})
}

// metav1ListRun selects the pods of run runID.
func metav1ListRun(runID string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: manifest.LabelRunID + "=" + runID}
}

// TestE2EQueueRulesAreNeeded gives an account Rules and QueueRules, each
// verb of QueueRules taken away in turn: a run to a missing LocalQueue is
// then not diagnosed at once (no Workload stream) or Preflight cannot
// read the LocalQueue; with every verb, both work.
func TestE2EQueueRulesAreNeeded(t *testing.T) {
	startKueue(t)
	rules := append(Rules(false), QueueRules()...)
	cases := []grant{{}} // all granted
	for _, g := range grants(QueueRules()) {
		cases = append(cases, g)
	}
	for _, g := range cases {
		name := "with every rule"
		if g != (grant{}) {
			name = "without " + g.String()
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := cluster.NewNamespace(t)
			less := rules
			if g != (grant{}) {
				less = without(rules, g)
			}
			client, token := deployAccount(t, ns, less)
			waitFor(t, "RBAC to apply", func() bool {
				for _, r := range grants(QueueRules()) {
					p := Permission{Namespace: ns, Verb: r.verb, Group: "kueue.x-k8s.io", Resource: r.resource}
					if res, sub, ok := strings.Cut(r.resource, "/"); ok {
						p.Group, p.Resource, p.Subresource = "visibility.kueue.x-k8s.io", res, sub
					}
					ok, _, err := mayI(t.Context(), client, p)
					if err != nil || ok != (r != g) {
						return false
					}
				}
				return true
			})
			err := queueScenario(t, client, ns)
			if g == (grant{"localqueues/pendingworkloads", "get"}) || g == (grant{}) {
				err = errors.Join(err, positionScenario(t, client, ns))
			}
			if g == (grant{"workloads", "list"}) || g == (grant{}) {
				// Streaming lists need only watch: list is for an API
				// server or gateway that refuses the watch.
				err = errors.Join(err, queueWatchRefusedScenario(t, token, ns))
			}
			switch {
			case g == (grant{}) && err != nil:
				t.Errorf("with every rule: %v", err)
			case g != (grant{}) && err == nil:
				t.Errorf("the worker needs %s, but did everything without it", g)
			default:
				t.Logf("%s: %v", name, err)
			}
		})
	}
}

// queueScenario runs to a LocalQueue that does not exist, as the
// account: NotAdmitted at once, naming it, with every stream healthy
// (Ready); and Preflight says so.
func queueScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	w := newAccountWorker(t, client, ns, Options{})
	defer w.Close(context.Background())
	res, err := w.Run(t.Context(), RunSpec{ID: "queue-probe", Values: map[string]any{"queue_name": "nope", "queue_timeout_seconds": 10}})
	if err != nil {
		return err
	}
	if res.Outcome != jobwatch.NotAdmitted || res.Diagnosis == nil || !strings.Contains(res.Diagnosis.Message, "doesn't exist") {
		return fmt.Errorf("run to a missing LocalQueue: %v, %+v; want NotAdmitted saying it does not exist", res.Outcome, res.Diagnosis)
	}
	// The Workload stream must be healthy, not limping on relists.
	for range 30 {
		if err := w.Ready(); err != nil {
			return fmt.Errorf("not ready after the run: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rep, err := w.Preflight(t.Context(), PreflightOptions{Values: map[string]any{"queue_name": "nope"}})
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(rep.Rejections, func(r Rejection) bool { return r.Object == "LocalQueue" }) {
		return fmt.Errorf("Preflight did not see the missing LocalQueue: %v; unchecked: %v", rep.Err(), rep.Unchecked)
	}
	return nil
}

// positionScenario runs two runs, as the account, through a LocalQueue
// with room for one: the one that waits knows its place in the queue.
func positionScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	if err := cluster.AddQueue(t.Context(), clustertest.QueueOptions{Namespace: ns, LocalQueue: "one", CPU: "1"}); err != nil {
		t.Fatal(err)
	}
	w := newAccountWorker(t, client, ns, Options{Prepare: manifest.PrepareOptions{
		Customizations: podAnnotations(map[string]string{clustertest.AnnotationDelay: "3s"})}})
	defer w.Close(context.Background())
	results := make(chan Result, 2)
	errs := make(chan error, 2)
	for i := range 2 {
		go func() {
			res, err := w.Run(t.Context(), RunSpec{ID: fmt.Sprintf("position-%d", i), Values: map[string]any{"queue_name": "one", "cpu_request": "1"}})
			results <- res
			errs <- err
		}()
	}
	var positions int
	for range 2 {
		res := <-results
		if err := <-errs; err != nil {
			return err
		}
		if res.Outcome != jobwatch.Succeeded {
			return fmt.Errorf("run %s: %v", res.RunID, res.Outcome)
		}
		if res.Queue != nil && res.Queue.Position != nil {
			positions++
		}
	}
	if positions == 0 {
		return errors.New("no run knew its place in the queue (get on localqueues/pendingworkloads in visibility.kueue.x-k8s.io)")
	}
	return nil
}

// queueWatchRefusedScenario is queueScenario's run through a proxy that
// refuses to watch Workloads in ns: the Workload stream lives on lists,
// and the missing LocalQueue is still diagnosed.
func queueWatchRefusedScenario(t *testing.T, token, ns string) error {
	t.Helper()
	undo := cluster.Proxy().Refuse(func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/workloads") && r.URL.Query().Get("watch") == "true"
	})
	defer undo()
	client, err := kubernetes.NewForConfig(cluster.Proxy().Config(token))
	if err != nil {
		t.Fatal(err)
	}
	w := newAccountWorker(t, client, ns, Options{})
	defer w.Close(context.Background())
	res, err := w.Run(t.Context(), RunSpec{ID: "queue-probe-lists", Values: map[string]any{"queue_name": "nope", "queue_timeout_seconds": 10}})
	if err != nil {
		return err
	}
	if res.Outcome != jobwatch.NotAdmitted || res.Diagnosis == nil || !strings.Contains(res.Diagnosis.Message, "doesn't exist") {
		return fmt.Errorf("run to a missing LocalQueue, Workload watch refused: %v, %+v; want NotAdmitted saying it does not exist", res.Outcome, res.Diagnosis)
	}
	return nil
}

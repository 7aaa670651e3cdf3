package benchsuite

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
)

// kueueLocalQueue is the LocalQueue the Kueue measurement's runs go
// through (the template's queue_name).
const kueueLocalQueue = "bench"

// Kueue is one Worker running Runs runs through one Kueue LocalQueue
// whose ClusterQueue has quota for Quota of them at once (each pod
// requests 1 CPU; the quota is Quota CPUs), each pod running 1 to 2 s,
// so that the queue holds most runs back. The figures say what following
// Kueue costs the Worker (a Workload stream per namespace beside the Job
// and pod ones, its requests) and how soon a Run sees its admission.
type Kueue struct {
	Runs, Quota int
	// KueueStart is how long StartKueue and AddQueue took (Kueue warm:
	// its binary cached).
	KueueStart time.Duration
	// Took is from the first Run to the last Run's return; Elapsed the
	// whole measurement, Kueue's start included.
	Took, Elapsed time.Duration
	// PeakReserving is the most Workloads that held quota in the
	// ClusterQueue at once (its status.reservingWorkloads, read every
	// half second while the runs ran): Quota when the quota is what holds
	// runs back. AdmissionsPerSecond is the runs admitted, over the time
	// from the first admission to the last, as the independent watch saw
	// them.
	PeakReserving       int64
	AdmissionsPerSecond float64
	// HeldP50 and HeldMax are, per run, the time its Workload held quota
	// as the Result tells it: from Queue.AdmittedAt to FinishedAt (the
	// Job's completion), both the cluster's whole-second times; of it,
	// StartP50 is the median from AdmittedAt to StartedAt (the Job's
	// start). Quota is freed a little after FinishedAt, once Kueue has
	// seen the Job finish.
	HeldP50, HeldMax, StartP50 time.Duration
	// Outcomes counts the Results by Outcome; a Run that returned an
	// error counts as "error".
	Outcomes map[string]int
	// Waited is how many Results had Queue.Waited > 0, and WaitedP50 and
	// WaitedMax the median and maximum of those Waited. Queueing's times
	// are the cluster's, whole seconds: a run admitted within a second of
	// its creation may show 0 or 1 s.
	Waited               int
	WaitedP50, WaitedMax time.Duration
	// QueuedP50 and QueuedMax are, per run, the time from its Job's
	// creation (the Started callback) to its Workload's Admitted=True
	// condition reaching the independent watch, both by the child's
	// clock: the wait as this process saw it, to the millisecond.
	QueuedP50, QueuedMax time.Duration
	// WatchesOpen is the watch streams open in the Worker's client once
	// every run had returned (its transport counts them);
	// APIServerWatches the rise in the API server's namespaced watches at
	// that moment, by resource (jobs, pods, workloads).
	WatchesOpen      int64
	APIServerWatches map[string]float64
	// ClientRequests is the requests of the Worker's counted client, from
	// New to Close, and ClientRequestKinds those by "verb resource code".
	ClientRequests     int64
	ClientRequestKinds map[string]int64
	// APIServerRequests is the rise in apiserver_request_total over the
	// same time for the kinds of request a Worker makes (as Scale's, and
	// namespaced lists and watches of Workloads), by "VERB resource":
	// Kueue's own writes to the Jobs (it resumes them) are among them.
	APIServerRequests map[string]float64
	// Admission is, per run, the time from the independent raw watch of
	// the namespace's Workloads seeing its Workload's Admitted=True
	// condition to the run's EventSink receiving jobwatch.ReasonAdmitted,
	// both by the child's clock; below zero when the sink was first.
	// Timed is how many runs it is made of, Negative how many of those
	// are below zero.
	AdmissionP50, AdmissionP99, AdmissionMax, AdmissionMin time.Duration
	Timed, Negative                                        int
	// HeapRan is the rise in the child's live heap from before New to
	// once every run had returned (the Worker open, its streams' caches
	// holding the runs' Jobs, pods and Workloads), per run; it includes
	// the measurement's own per-run records (under 0.5 KiB a run).
	HeapRan float64
	// Wrong lists the runs that did not end Succeeded, and runs whose
	// admission the two clocks could not both time or whose Workload,
	// Job and run did not match.
	Wrong []string
}

// APIServerRequestsPerRun is APIServerRequests summed, per run.
func (k *Kueue) APIServerRequestsPerRun() float64 {
	var sum float64
	for _, n := range k.APIServerRequests {
		sum += n
	}
	return sum / float64(k.Runs)
}

// kueueParams is what the parent tells a Kueue child.
type kueueParams struct {
	Kubeconfig string
	Namespace  string
	Runs       int
	// LocalQueue is each run's queue_name; Delay and Jitter script the
	// pods' run time (clustertest.AnnotationDelay, AnnotationJitter).
	LocalQueue    string
	Delay, Jitter string
	// PodStartTimeout is each run's pod_watch_timeout_seconds; RunTimeout
	// bounds each Run.
	PodStartTimeout int
	RunTimeout      time.Duration
}

// kueueResult is what a Kueue child reports when it has closed its
// Worker. Durations are per run, in no order.
type kueueResult struct {
	Took               time.Duration
	Outcomes           map[string]int
	Waited             []time.Duration // Queue.Waited of the runs with one > 0
	Queued             []time.Duration // creation → raw admission, local
	Held, Start        []time.Duration // AdmittedAt → FinishedAt, → StartedAt
	Admission          []time.Duration // raw admission → sink, local
	WatchesOpen        int64
	Requests           int64
	RequestKinds       map[string]int64
	HeapRan            float64
	Wrong              []string
	RawWatchReconnects int
	// FirstAdmission and LastAdmission are when the independent watch
	// saw the first and the last Workload admitted.
	FirstAdmission, LastAdmission time.Time
}

func measureKueue(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, opts Options, n int) (k Kueue, err error) {
	start := time.Now()
	quota := opts.kueueQuota()
	k = Kueue{Runs: n, Quota: quota}
	defer func() { k.Elapsed = time.Since(start) }()
	// The default node offers 1000 CPUs (clustertest.DefaultNodeName):
	// room for any quota asked here, so Kueue alone holds runs back.
	if err := cluster.StartKueue(ctx); err != nil {
		return k, err
	}
	ns, err := newNamespace(ctx, admin, "bench-kueue")
	if err != nil {
		return k, err
	}
	if err := cluster.AddQueue(ctx, clustertest.QueueOptions{Namespace: ns, LocalQueue: kueueLocalQueue, CPU: fmt.Sprint(quota)}); err != nil {
		return k, err
	}
	k.KueueStart = time.Since(start)

	p := kueueParams{Kubeconfig: cluster.Kubeconfig(), Namespace: ns, Runs: n, LocalQueue: kueueLocalQueue,
		Delay: "1s", Jitter: "2s", PodStartTimeout: 900, RunTimeout: 20 * time.Minute}
	watchesBefore, err := apiserverWatches(ctx, admin)
	if err != nil {
		return k, err
	}
	reqBefore, err := apiserverRequestKinds(ctx, admin)
	if err != nil {
		return k, err
	}

	child, err := startChild(ctx, kueueChildMode, p, p.RunTimeout+5*time.Minute, opts.Progress)
	if err != nil {
		return k, err
	}
	peak := watchReserving(ctx, cluster, ns)
	if err := child.ran(); err != nil {
		peak()
		return k, child.abort(err)
	}
	k.PeakReserving = peak()
	at, err := apiserverWatches(ctx, admin)
	if err != nil {
		return k, child.abort(err)
	}
	k.APIServerWatches = map[string]float64{}
	for r, v := range at {
		k.APIServerWatches[r] = v - watchesBefore[r]
	}
	var res kueueResult
	if err := child.close(&res); err != nil {
		return k, err
	}
	reqAfter, err := apiserverRequestKinds(ctx, admin)
	if err != nil {
		return k, err
	}
	k.APIServerRequests = map[string]float64{}
	for kind, v := range reqAfter {
		if d := v - reqBefore[kind]; d != 0 {
			k.APIServerRequests[kind] = d
		}
	}
	k.Took, k.Outcomes, k.Wrong = res.Took, res.Outcomes, res.Wrong
	k.Waited, k.WaitedP50, k.WaitedMax = len(res.Waited), percentile(res.Waited, 50), percentile(res.Waited, 100)
	k.QueuedP50, k.QueuedMax = percentile(res.Queued, 50), percentile(res.Queued, 100)
	k.HeldP50, k.HeldMax, k.StartP50 = percentile(res.Held, 50), percentile(res.Held, 100), percentile(res.Start, 50)
	k.WatchesOpen, k.ClientRequests, k.ClientRequestKinds, k.HeapRan = res.WatchesOpen, res.Requests, res.RequestKinds, res.HeapRan
	if span := res.LastAdmission.Sub(res.FirstAdmission); span > 0 {
		k.AdmissionsPerSecond = float64(len(res.Queued)-1) / span.Seconds()
	}
	k.Timed = len(res.Admission)
	k.AdmissionP50, k.AdmissionP99 = percentile(res.Admission, 50), percentile(res.Admission, 99)
	k.AdmissionMax, k.AdmissionMin = percentile(res.Admission, 100), percentile(res.Admission, 0)
	for _, d := range res.Admission {
		if d < 0 {
			k.Negative++
		}
	}
	if res.RawWatchReconnects > 0 {
		k.Wrong = append(k.Wrong, fmt.Sprintf("the independent Workload watch was cut and resumed %d times: admissions seen after a cut are timed late", res.RawWatchReconnects))
	}
	return k, nil
}

// watchReserving reads the ClusterQueue's status.reservingWorkloads
// every half second until the returned function is called, which stops
// it and returns the most seen. The ClusterQueue is the one AddQueue
// makes for the namespace ns (named after it).
func watchReserving(ctx context.Context, cluster *clustertest.Cluster, ns string) (peak func() int64) {
	dyn, err := dynamic.NewForConfig(cluster.Config())
	if err != nil {
		return func() int64 { return -1 }
	}
	cq := dyn.Resource(schema.GroupVersionResource{Group: workloadsResource.Group, Version: workloadsResource.Version, Resource: "clusterqueues"})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var most int64
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			if obj, err := cq.Get(ctx, ns, metav1.GetOptions{}); err == nil {
				n, _, _ := unstructured.NestedInt64(obj.Object, "status", "reservingWorkloads")
				most = max(most, n)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		cancel()
		<-done
		return most
	}
}

// apiserverWatches reads the API server's namespaced watches of jobs,
// pods and workloads (apiserver_longrunning_requests), by resource: only
// a namespaced watcher makes them (the controllers, the scheduler, kwok
// and Kueue watch the whole cluster).
func apiserverWatches(ctx context.Context, admin kubernetes.Interface) (map[string]float64, error) {
	out := map[string]float64{}
	for _, r := range []string{"jobs", "pods", "workloads"} {
		v, err := scaletest.SumMetric(ctx, admin, "apiserver_longrunning_requests{", func(l map[string]string) bool {
			return l["verb"] == "WATCH" && l["scope"] == "namespace" && l["resource"] == r
		})
		if err != nil {
			return nil, err
		}
		out[r] = v
	}
	return out, nil
}

// apiserverRequestKinds reads apiserver_request_total for the kinds of
// request a Worker makes (workerRequest), by "VERB resource" (with
// "/subresource" if any): the kinds found first, then each one's sum.
func apiserverRequestKinds(ctx context.Context, admin kubernetes.Interface) (map[string]float64, error) {
	kinds := map[string]bool{}
	if _, err := scaletest.SumMetric(ctx, admin, "apiserver_request_total{", func(l map[string]string) bool {
		if workerRequest(l) {
			kinds[requestKind(l)] = true
		}
		return false
	}); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for kind := range kinds {
		v, err := scaletest.SumMetric(ctx, admin, "apiserver_request_total{", func(l map[string]string) bool {
			return workerRequest(l) && requestKind(l) == kind
		})
		if err != nil {
			return nil, err
		}
		out[kind] = v
	}
	return out, nil
}

// requestKind names a sample of apiserver_request_total by its verb and
// resource: "POST jobs", "GET pods/log".
func requestKind(l map[string]string) string {
	r := l["resource"]
	if s := l["subresource"]; s != "" {
		r += "/" + s
	}
	return l["verb"] + " " + r
}

package benchsuite

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/worker"
)

// The ways the many-clusters measurement sends its runs.
const (
	// wayOne: every run in the Worker's own cluster.
	wayOne = "one cluster"
	// wayOptions: every other run to a second cluster given in
	// worker.Options.Clusters, named by the run's
	// cluster_config.context_name.
	wayOptions = "two clusters, Options.Clusters"
	// wayRunConfig: every other run to a second cluster whose kubeconfig
	// the run's cluster_config.config carries
	// (worker.Options.RunClusters).
	wayRunConfig = "two clusters, each run's cluster_config"
)

// The names the measured Worker gives its clusters (Result.Cluster): its
// own, and the second one of Options.Clusters. A run's cluster is named by
// its UID.
const (
	ownClusterName    = "a"
	secondClusterName = "b"
)

// Clusters is one Worker running the same number of runs, that succeed at
// once, all in one cluster, then spread evenly over two: the suite's
// cluster and a second one started for the measurement and stopped after
// it. The second cluster is given to the Worker in Options.Clusters (by a
// *rest.Config whose transport is counted), then by each run's
// cluster_config (a kubeconfig the Worker connects with itself).
type Clusters struct {
	Runs int
	// SecondStart is how long the second cluster took to start.
	SecondStart time.Duration
	// Ways are the measurements: one cluster, then the two ways of two.
	Ways []ClusterWay
	// Elapsed is the whole measurement, the second cluster's start and
	// stop included.
	Elapsed time.Duration
}

// ClusterWay is one Worker's burst of runs, sent one way.
type ClusterWay struct {
	// Way says how the runs were sent (wayOne, wayOptions, wayRunConfig).
	Way string
	// Runs is how many; Clusters how many clusters they were spread
	// over, the Worker's own first.
	Runs, Clusters int
	// Took is from the first Run to the last Run's return.
	Took time.Duration
	// WatchesOpen is the watch streams open in the Worker's clients once
	// every run had returned, by cluster, as their transports count them;
	// -1 for a cluster whose client the Worker builds itself from a
	// run's kubeconfig, which cannot be wrapped.
	WatchesOpen []int64
	// APIServerWatches is the rise in each cluster's API server's
	// namespaced Job and pod watches at the same moment.
	APIServerWatches []float64
	// ClientRequests is the requests of the Worker's counted clients,
	// from New to Close; APIServerRequests the rise in each API server's
	// apiserver_request_total over the same time, for the requests a
	// Worker makes (as Scale's).
	ClientRequests    int64
	APIServerRequests []float64
	// ClientRequestKinds counts the counted clients' requests by "verb
	// resource code".
	ClientRequestKinds map[string]int64
	// HeapRan, HeapClosed and HeapSettled are the rise in live heap from
	// before New to once every run had returned (the Worker still open,
	// its streams' caches holding the runs' Jobs and pods), to as soon as
	// Close returned, and to Settle after that, per run.
	HeapRan, HeapClosed, HeapSettled float64
	Settle                           time.Duration
	// Jobs is how many of the Worker's Jobs each cluster holds after the
	// runs, and Results how many Results named each cluster
	// (Result.Cluster, a run's cluster by its UID).
	Jobs    []int
	Results map[string]int
	// Wrong lists the runs that did not end Succeeded in the cluster they
	// were sent to, and Job counts that are not the runs'.
	Wrong []string
}

// RequestsPerRun is APIServerRequests summed over the clusters, per run.
func (w ClusterWay) RequestsPerRun() float64 {
	var sum float64
	for _, r := range w.APIServerRequests {
		sum += r
	}
	return sum / float64(w.Runs)
}

// clustersParams is what the parent tells a many-clusters child.
type clustersParams struct {
	Way       string
	Namespace string
	Runs      int
	// Kubeconfig is the Worker's own cluster's, Second the second
	// cluster's ("" for wayOne).
	Kubeconfig, Second string
	// PodStartTimeout is each run's pod_watch_timeout_seconds; RunTimeout
	// bounds each Run.
	PodStartTimeout int
	RunTimeout      time.Duration
	// Settle is how long after Close the heap is measured again.
	Settle time.Duration
}

// clustersResult is what a many-clusters child reports when it has
// closed its Worker.
type clustersResult struct {
	Took                time.Duration
	WatchesOpen         []int64
	Requests            int64
	RequestKinds        map[string]int64
	HeapRan, HeapClosed float64
	HeapSettled         float64
	Results             map[string]int
	Wrong               []string
}

// closeSettle is how long after Close a Worker's heap is measured again:
// the heap right after Close of a Worker whose runs used a run's cluster
// still held its streams' caches, in 5 of 8 runs of 1,000, for up to ~15 s.
var closeSettle = 20 * time.Second

// clusterSide is one cluster of the measurement, as the parent sees it.
type clusterSide struct {
	kubeconfig string
	admin      kubernetes.Interface
}

func measureClusters(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, opts Options, n int) (c Clusters, err error) {
	start := time.Now()
	c = Clusters{Runs: n}
	own := clusterSide{kubeconfig: cluster.Kubeconfig(), admin: admin}
	fmt.Fprintf(opts.Progress, "bench: clusters: %d runs, %s\n", n, wayOne)
	one, err := measureWay(ctx, opts, wayOne, n, own)
	if err != nil {
		return c, fmt.Errorf("%s: %w", wayOne, err)
	}
	c.Ways = append(c.Ways, one)

	fmt.Fprintln(opts.Progress, "bench: clusters: start a second cluster")
	// Its watch cache on, as the suite's cluster has it in the command.
	started := time.Now()
	second, err := clustertest.Start(ctx, clustertest.Options{Progress: opts.Progress, WatchCache: true})
	if err != nil {
		return c, fmt.Errorf("start the second cluster: %w", err)
	}
	defer func() {
		if serr := second.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop the second cluster: %w", serr)
		}
		c.Elapsed = time.Since(start)
	}()
	c.SecondStart = time.Since(started)
	adminB, err := kubernetes.NewForConfig(second.Config())
	if err != nil {
		return c, err
	}
	other := clusterSide{kubeconfig: second.Kubeconfig(), admin: adminB}
	for _, way := range []string{wayOptions, wayRunConfig} {
		fmt.Fprintf(opts.Progress, "bench: clusters: %d runs, %s\n", n, way)
		w, err := measureWay(ctx, opts, way, n, own, other)
		if err != nil {
			return c, fmt.Errorf("%s: %w", way, err)
		}
		c.Ways = append(c.Ways, w)
	}
	return c, nil
}

// measureWay runs n runs through a Worker in a child, sent way to the
// clusters sides (the Worker's own first), each in a fresh namespace of
// the same name.
func measureWay(ctx context.Context, opts Options, way string, n int, sides ...clusterSide) (w ClusterWay, err error) {
	w = ClusterWay{Way: way, Runs: n, Clusters: len(sides)}
	ns, err := newNamespace(ctx, sides[0].admin, "bench-clusters")
	if err != nil {
		return w, err
	}
	for _, s := range sides[1:] {
		if _, err := s.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return w, fmt.Errorf("create namespace %s in the second cluster: %w", ns, err)
		}
	}
	// Every pod of the burst waits its turn with the scheduler and kwok
	// on two cores: more than the default minute, and bounded all the
	// same.
	p := clustersParams{Way: way, Namespace: ns, Runs: n, Kubeconfig: sides[0].kubeconfig,
		PodStartTimeout: 900, RunTimeout: 20 * time.Minute, Settle: closeSettle}
	if len(sides) > 1 {
		p.Second = sides[1].kubeconfig
	}
	watchesBefore, reqBefore := make([]float64, len(sides)), make([]float64, len(sides))
	for i, s := range sides {
		if watchesBefore[i], err = scaletest.APIServerWatches(ctx, s.admin); err != nil {
			return w, err
		}
		if reqBefore[i], err = apiserverRequests(ctx, s.admin); err != nil {
			return w, err
		}
	}

	child, err := startChild(ctx, clustersChildMode, p, p.RunTimeout+5*time.Minute, opts.Progress)
	if err != nil {
		return w, err
	}
	if err := child.ran(); err != nil {
		return w, child.abort(err)
	}
	w.APIServerWatches = make([]float64, len(sides))
	for i, s := range sides {
		at, err := scaletest.APIServerWatches(ctx, s.admin)
		if err != nil {
			return w, child.abort(err)
		}
		w.APIServerWatches[i] = at - watchesBefore[i]
	}
	var res clustersResult
	if err := child.close(&res); err != nil {
		return w, err
	}
	w.Took, w.WatchesOpen, w.ClientRequests, w.ClientRequestKinds = res.Took, res.WatchesOpen, res.Requests, res.RequestKinds
	w.HeapRan, w.HeapClosed, w.HeapSettled, w.Settle = res.HeapRan, res.HeapClosed, res.HeapSettled, p.Settle
	w.Results, w.Wrong = res.Results, res.Wrong

	w.APIServerRequests, w.Jobs = make([]float64, len(sides)), make([]int, len(sides))
	sel := labels.Set{worker.LabelWorker: workerName}.String()
	for i, s := range sides {
		after, err := apiserverRequests(ctx, s.admin)
		if err != nil {
			return w, err
		}
		w.APIServerRequests[i] = after - reqBefore[i]
		jobs, err := s.admin.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return w, err
		}
		w.Jobs[i] = len(jobs.Items)
		if want := runsIn(n, len(sides), i); w.Jobs[i] != want {
			w.Wrong = append(w.Wrong, fmt.Sprintf("cluster %d of %d holds %d Jobs, want %d", i+1, len(sides), w.Jobs[i], want))
		}
	}
	return w, nil
}

// sendsTo is the cluster, of clusters, run i is sent to: every other run
// to the second.
func sendsTo(i, clusters int) int { return i % clusters }

// runsIn is how many of n runs sendsTo sends to cluster c of clusters.
func runsIn(n, clusters, c int) int {
	return n/clusters + min(1, max(0, n%clusters-c))
}

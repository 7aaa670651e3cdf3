package benchsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/worker"
)

// Scale is what one Worker following Runs concurrent runs cost, and how
// fast it saw them end.
type Scale struct {
	Runs int
	// WatchesOpen is the watch requests the Worker's client had open while
	// every run was tracked (its transport counts them); APIServerWatches
	// the rise in the API server's namespaced Job and pod watches then.
	WatchesOpen      int64
	APIServerWatches float64
	// ClientRequests is every request the Worker's client made, from New
	// to Close, creation included. APIServerRequests is the rise in the
	// API server's apiserver_request_total over the same time for the
	// requests a Worker makes (jobs, namespaced pod lists and watches,
	// pod logs, event lists; the cluster's own components make none of
	// those). Both also per run.
	ClientRequests int64
	// ClientRequestKinds counts the client's requests by "verb resource
	// code" (code 0: no answer).
	ClientRequestKinds                            map[string]int64
	APIServerRequests                             float64
	ClientRequestsPerRun, APIServerRequestsPerRun float64
	// HeapPerRun and StackPerRun are the rise in live heap and goroutine
	// stacks, from before New to the moment every run was tracked, per
	// run.
	HeapPerRun, StackPerRun float64
	// Detect is the time from the pod's terminal status being observed by
	// an independent watch to Run returning. JobController is the time
	// from the same moment to the same watch seeing the Job's Complete or
	// Failed condition: what a follower of the Job's conditions (the raw
	// client-go baseline) waits for the Job controller. p50 and p99 each.
	DetectP50, DetectP99               time.Duration
	JobControllerP50, JobControllerP99 time.Duration
	// Timed is how many runs the detection figures are made of, and
	// FromPod how many of all runs the pod decided, before the Job
	// controller did (jobwatch.Result.FromPod).
	Timed, FromPod int
	// Wrong lists runs that did not end Succeeded (failed runs, pods that
	// never started, runs past their time), each counted, never waited
	// for without bound; Elapsed is the whole measurement.
	Wrong   []string
	Elapsed time.Duration
	// Tracked is how many runs had their Job when the heap was measured
	// (all of them, unless some failed or stalled).
	Tracked int64
	// APIServerJobLists is the rise in the API server's namespaced LISTs
	// of Jobs (apiserver_request_total): only the Worker's shared stream
	// lists them, once and again after a watch is lost, never per run.
	APIServerJobLists float64
}

// childParams is what the parent tells the child.
type childParams struct {
	Kubeconfig string
	Namespace  string
	Runs       int
	Delay      string
	Jitter     string
	// PodStartTimeout is each run's pod_watch_timeout_seconds.
	PodStartTimeout int
	// RunTimeout bounds each Run; one that takes longer is wrong.
	RunTimeout time.Duration
}

// childResult is what the child reports.
type childResult struct {
	WatchesOpen int64
	Requests    int64
	// RequestKinds counts the requests by "verb resource code".
	RequestKinds            map[string]int64
	HeapPerRun, StackPerRun float64
	// Returned maps a run's Job name to when its Run returned (Unix ns).
	Returned map[string]int64
	// FromPod counts the Results the pod decided (jobwatch.Result.FromPod).
	FromPod int
	Wrong   []string
	// Tracked is how many runs had their Job at the measure.
	Tracked int64
}

func measureScale(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, opts Options, n int) (Scale, error) {
	s := Scale{Runs: n}
	start := time.Now()
	ns, err := newNamespace(ctx, admin, fmt.Sprintf("bench-scale-%d", n))
	if err != nil {
		return s, err
	}
	ends := newEndWatch(admin, ns)
	defer ends.stop()
	if err := ends.start(ctx); err != nil {
		return s, err
	}

	run := opts.runTime(n)
	podStart := max(time.Minute, 3*run)
	// A run takes its pod's start, its run time and a margin; the child
	// as a whole gets that and more, and is killed after it.
	runTimeout := podStart + 2*run + 5*time.Minute
	params, _ := json.Marshal(childParams{Kubeconfig: cluster.Kubeconfig(), Namespace: ns, Runs: n, Delay: run.String(), Jitter: (2 * run).String(),
		PodStartTimeout: int(podStart.Seconds()), RunTimeout: runTimeout})
	reqBefore, err := apiserverRequests(ctx, admin)
	if err != nil {
		return s, err
	}
	listsBefore, err := apiserverJobLists(ctx, admin)
	if err != nil {
		return s, err
	}
	watchesBefore, err := scaletest.APIServerWatches(ctx, admin)
	if err != nil {
		return s, err
	}
	cctx, cancel := context.WithTimeout(ctx, runTimeout+5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, os.Args[0], childArgs()...)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stderr = opts.Progress
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s, err
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return s, fmt.Errorf("start the child: %w", err)
	}
	fmt.Fprintf(stdin, "%s\n", params)
	// Measure once every pod runs (or has run), so every run is tracked;
	// or once no pod has started for a while: runs that failed, or pods
	// that never start, are the child's wrong runs, not a hang.
	if err := ends.waitStarted(ctx, n, podStart); err != nil {
		stdin.Close()
		cmd.Wait()
		return s, err
	}
	watchesAt, err := scaletest.APIServerWatches(ctx, admin)
	if err != nil {
		stdin.Close()
		cmd.Wait()
		return s, err
	}
	s.APIServerWatches = watchesAt - watchesBefore
	fmt.Fprintln(stdin, "measure")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return s, fmt.Errorf("the child: %w", err)
	}
	var res childResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return s, fmt.Errorf("the child said %q: %w", out.String(), err)
	}
	reqAfter, err := apiserverRequests(ctx, admin)
	if err != nil {
		return s, err
	}
	listsAfter, err := apiserverJobLists(ctx, admin)
	if err != nil {
		return s, err
	}
	s.APIServerJobLists, s.Tracked = listsAfter-listsBefore, res.Tracked
	s.WatchesOpen, s.HeapPerRun, s.StackPerRun, s.Wrong, s.FromPod = res.WatchesOpen, res.HeapPerRun, res.StackPerRun, res.Wrong, res.FromPod
	s.ClientRequests, s.APIServerRequests = res.Requests, reqAfter-reqBefore
	s.ClientRequestKinds = res.RequestKinds
	s.ClientRequestsPerRun, s.APIServerRequestsPerRun = float64(res.Requests)/float64(n), s.APIServerRequests/float64(n)

	var detect, jobc []time.Duration
	// Runs the pod decided return before their Jobs' conditions: give the
	// Job controller time to write the last of them.
	ends.waitEnded(ctx, res.Returned, 2*time.Minute)
	podEnd, jobEnd, failed := ends.times()
	for job, ret := range res.Returned {
		p, ok1 := podEnd[job]
		j, ok2 := jobEnd[job]
		if !ok1 || !ok2 {
			s.Wrong = append(s.Wrong, fmt.Sprintf("Job %s: its end was not seen by the independent watch", job))
			continue
		}
		if failed[job] {
			// The child returned Succeeded for it (or listed it as wrong
			// already); the Job controller said otherwise.
			s.Wrong = append(s.Wrong, fmt.Sprintf("Job %s: the Job controller failed it", job))
		}
		r := time.Unix(0, ret)
		detect, jobc = append(detect, r.Sub(p)), append(jobc, j.Sub(p))
	}
	s.Timed = len(detect)
	s.DetectP50, s.DetectP99 = percentile(detect, 50), percentile(detect, 99)
	s.JobControllerP50, s.JobControllerP99 = percentile(jobc, 50), percentile(jobc, 99)
	s.Elapsed = time.Since(start)
	return s, nil
}

// endWatch is the independent, raw client-go watch that times when each
// run's pod and Job end. It watches the whole cluster, selecting the
// measured Worker's Jobs by label, so the API server counts none of its
// watches as namespaced ones.
type endWatch struct {
	ns      string
	factory informers.SharedInformerFactory
	stopCh  chan struct{}

	mu      sync.Mutex
	started map[string]bool      // pod name → has run
	podEnd  map[string]time.Time // Job name → first pod end seen
	jobEnd  map[string]time.Time // Job name → Job end seen
	failed  map[string]bool      // Job name → it ended Failed
	changed chan struct{}        // a pod started or a Job ended
}

func newEndWatch(admin kubernetes.Interface, ns string) *endWatch {
	sel := labels.Set{worker.LabelWorker: workerName}.String()
	return &endWatch{
		ns: ns,
		factory: informers.NewSharedInformerFactoryWithOptions(admin, 0,
			informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel })),
		stopCh:  make(chan struct{}),
		started: map[string]bool{},
		podEnd:  map[string]time.Time{},
		jobEnd:  map[string]time.Time{},
		failed:  map[string]bool{},
		changed: make(chan struct{}, 1),
	}
}

func (e *endWatch) start(ctx context.Context) error {
	pods := e.factory.Core().V1().Pods().Informer()
	jobs := e.factory.Batch().V1().Jobs().Informer()
	onPod := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Namespace != e.ns {
			return
		}
		now := time.Now()
		e.mu.Lock()
		defer e.mu.Unlock()
		switch p.Status.Phase {
		case corev1.PodRunning:
			e.started[p.Name] = true
		case corev1.PodSucceeded, corev1.PodFailed:
			e.started[p.Name] = true
			job := p.Labels[batchv1.JobNameLabel]
			if _, seen := e.podEnd[job]; !seen {
				e.podEnd[job] = now
			}
		}
		e.notify()
	}
	onJob := func(obj any) {
		j, ok := obj.(*batchv1.Job)
		if !ok || j.Namespace != e.ns || !jobDone(j) {
			return
		}
		now := time.Now()
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, seen := e.jobEnd[j.Name]; !seen {
			e.jobEnd[j.Name] = now
			e.failed[j.Name] = !jobSucceeded(j)
			e.notify()
		}
	}
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onPod, UpdateFunc: func(_, o any) { onPod(o) }}); err != nil {
		return err
	}
	if _, err := jobs.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: onJob, UpdateFunc: func(_, o any) { onJob(o) }}); err != nil {
		return err
	}
	e.factory.Start(e.stopCh)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for typ, ok := range e.factory.WaitForCacheSync(sctx.Done()) {
		if !ok {
			return fmt.Errorf("the independent watch of %v did not sync", typ)
		}
	}
	return nil
}

func (e *endWatch) notify() {
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// waitStarted waits until n pods have run, or until none has started
// for stall: the caller goes on, and the runs whose pods never started
// are counted wrong.
func (e *endWatch) waitStarted(ctx context.Context, n int, stall time.Duration) error {
	t := time.NewTimer(stall)
	defer t.Stop()
	last := -1
	for {
		e.mu.Lock()
		got := len(e.started)
		e.mu.Unlock()
		if got >= n {
			return nil
		}
		if got != last {
			last = got
			t.Reset(stall)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods started: %w", got, n, ctx.Err())
		case <-t.C:
			return nil
		case <-e.changed:
		}
	}
}

// waitEnded waits, up to timeout, until the end of each Job in jobs has
// been seen; the caller counts those still missing.
func (e *endWatch) waitEnded(ctx context.Context, jobs map[string]int64, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		e.mu.Lock()
		missing := 0
		for job := range jobs {
			if _, ok := e.jobEnd[job]; !ok {
				missing++
			}
		}
		e.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-e.changed:
		}
	}
}

func (e *endWatch) times() (podEnd, jobEnd map[string]time.Time, failed map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.podEnd, e.jobEnd, e.failed
}

func (e *endWatch) stop() {
	close(e.stopCh)
	e.factory.Shutdown()
}

// apiserverRequests sums apiserver_request_total over the requests a
// Worker makes and the cluster's components do not (workerRequest).
func apiserverRequests(ctx context.Context, admin kubernetes.Interface) (float64, error) {
	return scaletest.SumMetric(ctx, admin, "apiserver_request_total{", workerRequest)
}

// workerRequest says whether a sample of apiserver_request_total, by its
// labels l, is of a kind of request a Worker makes and the cluster's
// components do not: any request on jobs (not a subresource) short of a
// whole-cluster list or watch, namespaced lists and watches of pods and
// of Kueue's Workloads, pod logs, and namespaced event lists. Kueue's
// controller writes to the Jobs it manages too (it resumes them), and
// reads Workloads through whole-cluster watches only.
func workerRequest(l map[string]string) bool {
	switch {
	case l["scope"] == "cluster":
		return false
	case l["resource"] == "jobs" && l["subresource"] == "":
		return true
	case l["resource"] == "pods" && l["subresource"] == "":
		return l["verb"] == "LIST" || l["verb"] == "WATCH"
	case l["resource"] == "pods" && l["subresource"] == "log":
		return true
	case l["resource"] == "events":
		return l["verb"] == "LIST"
	case l["resource"] == "workloads" && l["subresource"] == "":
		return l["verb"] == "LIST" || l["verb"] == "WATCH"
	}
	return false
}

// apiserverJobLists sums apiserver_request_total for namespaced LISTs of
// Jobs, which only a Worker makes (the Job controller and the garbage
// collector list every namespace at once).
func apiserverJobLists(ctx context.Context, admin kubernetes.Interface) (float64, error) {
	return scaletest.SumMetric(ctx, admin, "apiserver_request_total{", func(l map[string]string) bool {
		return l["resource"] == "jobs" && l["subresource"] == "" && l["verb"] == "LIST" && l["scope"] == "namespace"
	})
}

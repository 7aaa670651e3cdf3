package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/internal/testcluster"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

// Submission compares how fast a Worker gets Jobs created with a raw
// client-go Create loop on the same API server, with the same client rate
// limit and the same number of goroutines.
type Submission struct {
	QPS   float32
	Burst int
	Jobs  int
	// Isolated says the control plane ran on CPU 0 and this process (the
	// raw loops, the Worker) on the other CPUs, as a worker runs on
	// another node than the API server. Otherwise all share every CPU,
	// and each CPU second the client spends is taken from the control
	// plane. Isolated rounds also measure a watched raw loop.
	Isolated bool
	// Rounds is how many rounds were measured.
	Rounds int
	// Raw, Worker and Watched are the median round's time to create Jobs
	// Jobs by a raw loop, by a Worker and by a raw loop that also watches
	// its Jobs with a client-go informer, as any follower of its Jobs
	// must (isolated rounds only). Worker counts from the first Run to
	// the last Job reported created (Run's Started), so it includes
	// rendering, preparing, the idempotency the Creator adds and naming
	// each Job by PID.
	Raw, Worker, Watched time.Duration
	// Ratio is the median, over the rounds, of the Worker's throughput
	// over the raw loop's in the same round: raw time / Worker time.
	// WatchedRatio is the same for the watched raw loop.
	Ratio, WatchedRatio float64
	// Start is the median time Worker.Start took, before the clock.
	Start time.Duration
	// ControlPlaneCores is the control plane's CPU time over the raw
	// loop's wall time, over all rounds: how many CPUs it kept busy
	// serving the raw loop.
	ControlPlaneCores float64
	// Client and Plane are, per way of creating, the median round's CPU
	// time per Job of this process and of the control plane.
	Client, Plane [numWays]time.Duration
}

// A way of creating Jobs in a submission round.
type way int

const (
	rawLoop way = iota
	workerRuns
	watchedLoop
	numWays
)

// suspendPatch makes the Jobs suspended: submission measures creation
// alone, without the pods the Job controller would make.
const suspendPatch = `[{"op": "add", "path": "/spec/suspend", "value": true}]`

// measureSubmission runs SubmitRounds rounds, each a raw loop and a Worker
// creating SubmitJobs Jobs in namespaces of their own, the raw loop first
// in even rounds and second in odd ones. Pairing the two within a round,
// and taking the median of the rounds' ratios, cancels most of the drift
// of a cluster that fills up and of a noisy machine. isolated binds the
// control plane to CPU 0 and this process to the others for the time of
// the measurement.
func measureSubmission(ctx context.Context, cluster *testcluster.Cluster, admin kubernetes.Interface, opts Options, qps float32, burst int, isolated bool) (s Submission, err error) {
	s = Submission{QPS: qps, Burst: burst, Jobs: opts.SubmitJobs, Rounds: opts.SubmitRounds, Isolated: isolated}
	ways := []way{rawLoop, workerRuns}
	if isolated {
		ways = append(ways, watchedLoop)
		undo, err := isolate(cluster)
		if err != nil {
			return s, err
		}
		defer func() { err = errors.Join(err, undo()) }()
	}
	conf := withLimits(cluster.Config(), qps, burst)
	var walls, client, plane [numWays][]time.Duration
	var starts []time.Duration
	var ratios, watchedRatios []float64
	var rawWall, rawPlane time.Duration
	for round := range opts.SubmitRounds {
		var took [numWays]time.Duration
		for i := range ways {
			w := ways[(i+round)%len(ways)]
			self0, err0 := testcluster.ProcessCPUTime(0)
			plane0, err1 := cluster.CPUTime()
			if err := errors.Join(err0, err1); err != nil {
				return s, err
			}
			var err error
			switch w {
			case rawLoop:
				took[w], err = rawCreate(ctx, admin, conf, opts.SubmitJobs, opts.Concurrency, false)
			case watchedLoop:
				took[w], err = rawCreate(ctx, admin, conf, opts.SubmitJobs, opts.Concurrency, true)
			case workerRuns:
				var start time.Duration
				took[w], start, err = workerCreate(ctx, admin, conf, opts.SubmitJobs, opts.Concurrency)
				starts = append(starts, start)
			}
			if err != nil {
				return s, err
			}
			self1, err0 := testcluster.ProcessCPUTime(0)
			plane1, err1 := cluster.CPUTime()
			if err := errors.Join(err0, err1); err != nil {
				return s, err
			}
			n := time.Duration(opts.SubmitJobs)
			walls[w] = append(walls[w], took[w])
			client[w] = append(client[w], (self1-self0)/n)
			plane[w] = append(plane[w], (plane1-plane0)/n)
			if w == rawLoop {
				rawWall += took[w]
				rawPlane += plane1 - plane0
			}
		}
		ratios = append(ratios, float64(took[rawLoop])/float64(took[workerRuns]))
		if isolated {
			watchedRatios = append(watchedRatios, float64(took[rawLoop])/float64(took[watchedLoop]))
		}
	}
	s.Raw, s.Worker, s.Start = median(walls[rawLoop]), median(walls[workerRuns]), median(starts)
	s.Ratio = medianOf(ratios)
	if isolated {
		s.Watched, s.WatchedRatio = median(walls[watchedLoop]), medianOf(watchedRatios)
	}
	for _, w := range ways {
		s.Client[w], s.Plane[w] = median(client[w]), median(plane[w])
	}
	s.ControlPlaneCores = rawPlane.Seconds() / rawWall.Seconds()
	return s, nil
}

func medianOf(fs []float64) float64 {
	fs = slices.Clone(fs)
	slices.Sort(fs)
	return fs[len(fs)/2]
}

// isolate binds the control plane to CPU 0 and this process to the other
// CPUs, and returns what undoes it.
func isolate(cluster *testcluster.Cluster) (undo func() error, err error) {
	n := runtime.NumCPU()
	if n < 2 {
		return nil, fmt.Errorf("isolating the client from the control plane needs 2 CPUs; this machine has %d", n)
	}
	undo = func() error { return errors.Join(cluster.PinCPUs(), testcluster.PinProcess(0)) }
	others := make([]int, 0, n-1)
	for cpu := 1; cpu < n; cpu++ {
		others = append(others, cpu)
	}
	if err := errors.Join(cluster.PinCPUs(0), testcluster.PinProcess(0, others...)); err != nil {
		return nil, errors.Join(err, undo())
	}
	return undo, nil
}

// warmClient returns a client of conf for a fresh namespace, its
// connection to the API server already open, as a long-lived process's is.
func warmClient(ctx context.Context, admin kubernetes.Interface, conf *rest.Config, prefix string) (kubernetes.Interface, string, error) {
	ns, err := newNamespace(ctx, admin, prefix)
	if err != nil {
		return nil, "", err
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return nil, "", err
	}
	if _, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		return nil, "", err
	}
	return client, ns, nil
}

// rawCreate creates n copies of the default template's Job, prepared once,
// with a plain Create each. With watch, a client-go informer follows the
// namespace's Jobs meanwhile, from before the first Create.
func rawCreate(ctx context.Context, admin kubernetes.Interface, conf *rest.Config, n, conc int, watch bool) (time.Duration, error) {
	client, ns, err := warmClient(ctx, admin, conf, "bench-raw")
	if err != nil {
		return 0, err
	}
	cfg, err := manifest.Default().Render(map[string]any{"namespace": ns}, manifest.RenderOptions{})
	if err != nil {
		return 0, err
	}
	job, err := cfg.Prepare(manifest.Run{ID: "raw"}, manifest.PrepareOptions{Customizations: []byte(suspendPatch)})
	if err != nil {
		return 0, err
	}
	if watch {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
		f.Batch().V1().Jobs().Informer()
		stop := make(chan struct{})
		defer f.Shutdown()
		defer close(stop) // before Shutdown, which waits for the informer
		f.Start(stop)
		if !f.WaitForCacheSync(stop)[reflect.TypeFor[*batchv1.Job]()] {
			return 0, errors.New("watched raw loop: the Job informer did not sync")
		}
	}
	start := time.Now()
	err = parallel(n, conc, func(int) error {
		_, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("raw loop: %w", err)
	}
	return time.Since(start), nil
}

// workerCreate has a started Worker run n runs, each stopped as soon as
// its Job exists. It returns the time the runs took and the time
// Worker.Start took before them.
func workerCreate(ctx context.Context, admin kubernetes.Interface, conf *rest.Config, n, conc int) (took, started time.Duration, err error) {
	client, ns, err := warmClient(ctx, admin, conf, "bench-worker")
	if err != nil {
		return 0, 0, err
	}
	w, err := worker.New(client, worker.Options{
		Name: workerName, Namespace: ns,
		Prepare: manifest.PrepareOptions{Customizations: []byte(suspendPatch)},
	})
	if err != nil {
		return 0, 0, err
	}
	defer w.Close(context.WithoutCancel(ctx))
	t0 := time.Now()
	if err := w.Start(ctx); err != nil {
		return 0, 0, err
	}
	started = time.Since(t0)
	var created atomic.Int64
	start := time.Now()
	err = parallel(n, conc, func(i int) error {
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err := w.Run(rctx, worker.Run{ID: fmt.Sprintf("submit-%d", i), Started: func(clusterid.PID) {
			created.Add(1)
			cancel()
		}})
		if errors.Is(err, context.Canceled) && rctx.Err() != nil && ctx.Err() == nil {
			return nil
		}
		return err
	})
	took = time.Since(start)
	if err == nil && created.Load() != int64(n) {
		err = fmt.Errorf("%d of %d Jobs created", created.Load(), n)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("worker: %w", err)
	}
	return took, started, nil
}

// parallel calls f(0..n-1) from conc goroutines and returns the first
// error.
func parallel(n, conc int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range conc {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("item %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// jobSucceeded says whether the Job has its Complete condition.
func jobSucceeded(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == "True" {
			return true
		}
	}
	return false
}

// jobDone reports whether job has a true Complete or Failed condition.
func jobDone(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == "True" {
			return true
		}
	}
	return false
}

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
	"github.com/kubeworker/kubeworker/clustertest"
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

// measureSubmission runs SubmitRounds rounds. Each round gives every way
// of creating a namespace and client of its own (the Worker started), then
// has them create SubmitJobs Jobs each, in chunks taken in turn in an order
// that rotates, so that all ways meet the same moments of a noisy machine
// and of a cluster that fills up; the figure is the median of the rounds'
// ratios. Chunks are of 100 Jobs when the client's burst covers a whole
// round (the rate limiter never binds); else each way creates its Jobs in
// one go, so that a token bucket refilled while others run does not feed
// it. isolated binds the control plane to CPU 0 and this process to the
// others for the time of the measurement.
func measureSubmission(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, opts Options, qps float32, burst int, isolated bool) (s Submission, err error) {
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
	chunk := opts.SubmitJobs
	if burst >= opts.SubmitJobs {
		chunk = min(100, opts.SubmitJobs)
	}
	conf := withLimits(cluster.Config(), qps, burst)
	var walls, client, plane [numWays][]time.Duration
	var starts []time.Duration
	var ratios, watchedRatios []float64
	var rawWall, rawPlane time.Duration
	for round := range opts.SubmitRounds {
		took, self, cp, started, err := submissionRound(ctx, cluster, admin, conf, opts, ways, chunk, round)
		if err != nil {
			return s, err
		}
		starts = append(starts, started)
		for _, w := range ways {
			n := time.Duration(opts.SubmitJobs)
			walls[w] = append(walls[w], took[w])
			client[w] = append(client[w], self[w]/n)
			plane[w] = append(plane[w], cp[w]/n)
		}
		rawWall += took[rawLoop]
		rawPlane += cp[rawLoop]
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

// submissionRound runs one round of measureSubmission and returns, per
// way, the time its chunks took and the CPU time this process and the
// control plane spent meanwhile, and how long Worker.Start took.
func submissionRound(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, conf *rest.Config, opts Options, ways []way, chunk, round int) (took, self, cp [numWays]time.Duration, started time.Duration, err error) {
	subs := make([]*submitter, numWays)
	for _, w := range ways {
		sub, err := newSubmitter(ctx, admin, conf, w, opts.Concurrency)
		if err != nil {
			return took, self, cp, 0, err
		}
		defer sub.close()
		subs[w] = sub
	}
	for c, from := 0, 0; from < opts.SubmitJobs; c, from = c+1, from+chunk {
		n := min(chunk, opts.SubmitJobs-from)
		for i := range ways {
			w := ways[(i+round+c)%len(ways)]
			self0, err0 := clustertest.ProcessCPUTime(0)
			plane0, err1 := cluster.CPUTime()
			t0 := time.Now()
			err2 := subs[w].create(ctx, from, n)
			d := time.Since(t0)
			self1, err3 := clustertest.ProcessCPUTime(0)
			plane1, err4 := cluster.CPUTime()
			if err := errors.Join(err0, err1, err2, err3, err4); err != nil {
				return took, self, cp, 0, err
			}
			took[w] += d
			self[w] += self1 - self0
			cp[w] += plane1 - plane0
		}
	}
	return took, self, cp, subs[workerRuns].started, nil
}

func medianOf(fs []float64) float64 {
	fs = slices.Clone(fs)
	slices.Sort(fs)
	return fs[len(fs)/2]
}

// isolate binds the control plane to CPU 0 and this process to the other
// CPUs, and returns what undoes it.
func isolate(cluster *clustertest.Cluster) (undo func() error, err error) {
	n := runtime.NumCPU()
	if n < 2 {
		return nil, fmt.Errorf("isolating the client from the control plane needs 2 CPUs; this machine has %d", n)
	}
	undo = func() error { return errors.Join(cluster.PinCPUs(), clustertest.PinProcess(0)) }
	others := make([]int, 0, n-1)
	for cpu := 1; cpu < n; cpu++ {
		others = append(others, cpu)
	}
	if err := errors.Join(cluster.PinCPUs(0), clustertest.PinProcess(0, others...)); err != nil {
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

// A submitter creates Jobs one way, a chunk at a time, in a namespace of
// its own.
type submitter struct {
	// create makes Jobs from to from+n-1 with conc goroutines.
	create func(ctx context.Context, from, n int) error
	close  func()
	// started is how long Worker.Start took (workerRuns only).
	started time.Duration
}

// newSubmitter readies a way of creating: a fresh namespace, a client
// whose connection is open, and for the raw loops the default template's
// Job prepared once (each Create sends a copy, named by the API server);
// for watchedLoop also a synced client-go informer of the namespace's
// Jobs; for workerRuns a started Worker whose Runs stop as soon as their
// Job exists.
func newSubmitter(ctx context.Context, admin kubernetes.Interface, conf *rest.Config, w way, conc int) (*submitter, error) {
	client, ns, err := warmClient(ctx, admin, conf, "bench-submit")
	if err != nil {
		return nil, err
	}
	if w == workerRuns {
		return workerSubmitter(ctx, client, ns, conc)
	}
	cfg, err := manifest.Default().Render(map[string]any{"namespace": ns}, manifest.RenderOptions{})
	if err != nil {
		return nil, err
	}
	job, err := cfg.Prepare(manifest.Run{ID: "raw"}, manifest.PrepareOptions{Customizations: []byte(suspendPatch)})
	if err != nil {
		return nil, err
	}
	sub := &submitter{close: func() {}}
	if w == watchedLoop {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
		f.Batch().V1().Jobs().Informer()
		stop := make(chan struct{})
		sub.close = func() { close(stop); f.Shutdown() } // Shutdown waits for the informer, which stop ends
		f.Start(stop)
		if !f.WaitForCacheSync(stop)[reflect.TypeFor[*batchv1.Job]()] {
			sub.close()
			return nil, errors.New("watched raw loop: the Job informer did not sync")
		}
	}
	sub.create = func(ctx context.Context, from, n int) error {
		err := parallel(n, conc, func(int) error {
			_, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("raw loop: %w", err)
		}
		return nil
	}
	return sub, nil
}

// workerSubmitter is the workerRuns way: a started Worker whose runs
// stop as soon as their Job exists.
func workerSubmitter(ctx context.Context, client kubernetes.Interface, ns string, conc int) (*submitter, error) {
	w, err := worker.New(client, worker.Options{
		Name: workerName, Namespace: ns,
		Prepare: manifest.PrepareOptions{Customizations: []byte(suspendPatch)},
	})
	if err != nil {
		return nil, err
	}
	sub := &submitter{close: func() { w.Close(context.WithoutCancel(ctx)) }}
	t0 := time.Now()
	if err := w.Start(ctx); err != nil {
		sub.close()
		return nil, err
	}
	sub.started = time.Since(t0)
	sub.create = func(ctx context.Context, from, n int) error {
		var created atomic.Int64
		err := parallel(n, conc, func(i int) error {
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			_, err := w.Run(rctx, worker.Run{ID: fmt.Sprintf("submit-%d", from+i), Started: func(clusterid.PID) {
				created.Add(1)
				cancel()
			}})
			if errors.Is(err, context.Canceled) && rctx.Err() != nil && ctx.Err() == nil {
				return nil
			}
			return err
		})
		if err == nil && created.Load() != int64(n) {
			err = fmt.Errorf("%d of %d Jobs created", created.Load(), n)
		}
		if err != nil {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	}
	return sub, nil
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

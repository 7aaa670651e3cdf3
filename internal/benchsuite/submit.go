package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

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
	// Raw and Worker are the median round's time to create Jobs Jobs.
	// Worker counts from the first Run to the last Job reported created
	// (Run's Started), so it includes rendering, preparing, the
	// idempotency the Creator adds and naming each Job by PID.
	Raw, Worker time.Duration
	// Ratio is the Worker's throughput over the raw loop's: Raw / Worker.
	Ratio float64
}

// suspendPatch makes the Jobs suspended: submission measures creation
// alone, without the pods the Job controller would make.
const suspendPatch = `[{"op": "add", "path": "/spec/suspend", "value": true}]`

func measureSubmission(ctx context.Context, cluster *testcluster.Cluster, admin kubernetes.Interface, opts Options, qps float32, burst int) (Submission, error) {
	s := Submission{QPS: qps, Burst: burst, Jobs: opts.SubmitJobs}
	conf := withLimits(cluster.Config(), qps, burst)
	var raws, workers []time.Duration
	for range opts.SubmitRounds {
		ns, err := newNamespace(ctx, admin, "bench-raw")
		if err != nil {
			return s, err
		}
		client, err := kubernetes.NewForConfig(conf)
		if err != nil {
			return s, err
		}
		d, err := rawCreate(ctx, client, ns, opts.SubmitJobs, opts.Concurrency)
		if err != nil {
			return s, fmt.Errorf("raw loop: %w", err)
		}
		raws = append(raws, d)

		if ns, err = newNamespace(ctx, admin, "bench-worker"); err != nil {
			return s, err
		}
		if client, err = kubernetes.NewForConfig(conf); err != nil {
			return s, err
		}
		if d, err = workerCreate(ctx, client, ns, opts.SubmitJobs, opts.Concurrency); err != nil {
			return s, fmt.Errorf("worker: %w", err)
		}
		workers = append(workers, d)
	}
	s.Raw, s.Worker = median(raws), median(workers)
	if s.Worker > 0 {
		s.Ratio = float64(s.Raw) / float64(s.Worker)
	}
	return s, nil
}

// rawCreate creates n copies of the default template's Job, prepared once,
// with a plain Create each.
func rawCreate(ctx context.Context, client kubernetes.Interface, ns string, n, conc int) (time.Duration, error) {
	cfg, err := manifest.Default().Render(map[string]any{"namespace": ns}, manifest.RenderOptions{})
	if err != nil {
		return 0, err
	}
	job, err := cfg.Prepare(manifest.Run{ID: "raw"}, manifest.PrepareOptions{Customizations: []byte(suspendPatch)})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	err = parallel(n, conc, func(int) error {
		_, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
		return err
	})
	return time.Since(start), err
}

// workerCreate has a Worker run n runs, each stopped as soon as its Job
// exists.
func workerCreate(ctx context.Context, client kubernetes.Interface, ns string, n, conc int) (time.Duration, error) {
	w, err := worker.New(client, worker.Options{
		Name: workerName, Namespace: ns,
		Prepare: manifest.PrepareOptions{Customizations: []byte(suspendPatch)},
	})
	if err != nil {
		return 0, err
	}
	defer w.Close(context.WithoutCancel(ctx))
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
	d := time.Since(start)
	if err == nil && created.Load() != int64(n) {
		err = fmt.Errorf("%d of %d Jobs created", created.Load(), n)
	}
	return d, err
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

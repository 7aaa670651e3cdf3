package worker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
)

// BenchmarkE2EAttach1000RunningRuns starts 1,000 runs whose pods run for
// an hour, then has a new Worker pick all of them up, once by Attach per
// PID and once by one Sweep, and reports for each: the watch requests the
// Worker's client holds open (counted by its transport) and the rise in
// the API server's own count of namespaced Job and pod watches, every
// request the Worker made, and the time from the start to each run's
// first event (the pod Running). Run it with
//
//	go test -run '^$' -bench E2EAttach1000 -benchtime 1x ./worker
func BenchmarkE2EAttach1000RunningRuns(b *testing.B) {
	const n = 1000
	for range b.N {
		ns := cluster.NewNamespace(b)
		pids := startRunning(b, ns, n)
		for _, mode := range []string{"attach", "sweep"} {
			fig := measureAttach(b, ns, pids, mode)
			b.Logf("%s %d running runs: %d watches open (API server +%.0f), %d requests (%.3f per run), first event after %v (p50 %v, p99 %v, last %v)",
				mode, n, fig.watches, fig.apiserverWatches, fig.requests, float64(fig.requests)/n, fig.first, fig.p50, fig.p99, fig.last)
			b.ReportMetric(float64(fig.watches), mode+"-watches")
			b.ReportMetric(fig.apiserverWatches, mode+"-apiserver-watches")
			b.ReportMetric(float64(fig.requests)/n, mode+"-requests/run")
			b.ReportMetric(float64(fig.p50.Milliseconds()), mode+"-first-event-p50-ms")
			b.ReportMetric(float64(fig.p99.Milliseconds()), mode+"-first-event-p99-ms")
			b.ReportMetric(float64(fig.last.Milliseconds()), mode+"-first-event-last-ms")
		}
	}
}

// TestAttachingManyRunsSharesTwoWatches is the benchmark's smoke test:
// picking up 50 running runs, by Attach or by Sweep, holds two watch
// requests open (Jobs and pods of the namespace), not one per run.
func TestAttachingManyRunsSharesTwoWatches(t *testing.T) {
	ns := cluster.NewNamespace(t)
	pids := startRunning(t, ns, 50)
	for _, mode := range []string{"attach", "sweep"} {
		fig := measureAttach(t, ns, pids, mode)
		t.Logf("%s: %d watches open (API server +%.0f), %d requests", mode, fig.watches, fig.apiserverWatches, fig.requests)
		if fig.watches > 2 || fig.apiserverWatches > 2 {
			t.Errorf("%s: %d watches open (API server +%.0f), want at most 2", mode, fig.watches, fig.apiserverWatches)
		}
	}
}

// startRunning starts n runs of the worker "scale" in ns whose pods run
// for an hour, and waits until every pod is Running.
func startRunning(b testing.TB, ns string, n int) []clusterid.PID {
	b.Helper()
	conf := cluster.Config()
	conf.QPS, conf.Burst = 500, 1000
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		b.Fatal(err)
	}
	w := fateWorker(b, client, ns, "scale", Options{})
	pids := make([]clusterid.PID, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				job, _, err := w.opts.Parts.Preparer.Prepare(b.Context(), RunSpec{ID: fmt.Sprintf("scale-%04d", i), Values: fate(map[string]string{clustertest.AnnotationDelay: "1h"})})
				if err == nil {
					job, err = w.opts.Parts.Creator.Create(b.Context(), job)
				}
				if err == nil {
					pids[i], err = w.opts.Parts.Identity.PID(b.Context(), job.Namespace, job.Name)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	err = wait.PollUntilContextTimeout(b.Context(), 2*time.Second, 20*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running >= n, nil
	})
	if err != nil {
		b.Fatalf("the pods of %d runs did not all run: %v", n, err)
	}
	return pids
}

type attachFigures struct {
	watches               int64
	apiserverWatches      float64
	requests              int64
	first, p50, p99, last time.Duration
}

// measureAttach has a new Worker pick up every run, by Attach per PID or
// by one Sweep, until each run has had its first event; then it closes
// the Worker, which ends the attaches.
func measureAttach(b testing.TB, ns string, pids []clusterid.PID, mode string) attachFigures {
	b.Helper()
	counted := &scaletest.Transport{}
	conf := cluster.Config()
	conf.QPS, conf.Burst = kubeconfig.DefaultQPS, kubeconfig.DefaultBurst
	conf.Wrap(counted.Wrap)
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		b.Fatal(err)
	}
	admin := adminClient(b)
	before, err := scaletest.APIServerWatches(b.Context(), admin)
	if err != nil {
		b.Fatal(err)
	}
	w, err := New(client, Options{Name: "scale", Namespace: ns, Template: jobtest.FateTemplate()})
	if err != nil {
		b.Fatal(err)
	}
	firsts := make([]time.Duration, len(pids))
	var seen sync.WaitGroup
	seen.Add(len(pids))
	start := time.Now()
	sink := func(i int) jobwatch.EventSink {
		var once sync.Once
		return jobwatch.EventFunc(func(jobwatch.Event) {
			once.Do(func() { firsts[i] = time.Since(start); seen.Done() })
		})
	}
	ctx, cancel := context.WithCancel(b.Context())
	var attaches sync.WaitGroup
	switch mode {
	case "attach":
		for i, pid := range pids {
			attaches.Go(func() { w.Attach(ctx, pid, AttachOptions{Events: sink(i)}) })
		}
	case "sweep":
		index := map[string]int{}
		for i, pid := range pids {
			index[pid.Name] = i
		}
		report, err := w.Sweep(ctx, func(string) bool { return true }, SweepOptions{
			Attach: func(run RunInfo) AttachOptions { return AttachOptions{Events: sink(index[run.PID.Name])} },
		})
		if err != nil || len(report.Attached) != len(pids) {
			b.Fatalf("Sweep attached %d runs of %d: %v", len(report.Attached), len(pids), err)
		}
		attaches.Go(func() { <-report.Done })
	}
	seen.Wait()
	fig := attachFigures{watches: counted.OpenWatches(), requests: counted.Requests()}
	after, err := scaletest.APIServerWatches(b.Context(), admin)
	if err != nil {
		b.Fatal(err)
	}
	fig.apiserverWatches = after - before
	cancel()
	attaches.Wait()
	if err := w.Close(context.Background()); err != nil {
		b.Error(err)
	}
	slices.Sort(firsts)
	fig.first, fig.p50, fig.p99, fig.last = firsts[0], firsts[len(firsts)/2], firsts[len(firsts)*99/100], firsts[len(firsts)-1]
	return fig
}

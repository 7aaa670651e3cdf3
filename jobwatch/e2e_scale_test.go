package jobwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeworker/kubeworker/internal/scaletest"
)

// The scale measurement runs the Watcher in a child process (this test
// binary, re-run with scaleChildEnv set), so that its heap holds nothing
// but the Watcher and the Waits: the test cluster's own in-process parts
// (the proxy, a pod informer of the whole cluster) would swamp the figure.

const scaleChildEnv = "JOBWATCH_SCALE_CHILD"

// scaleFigures is what one measurement found.
type scaleFigures struct {
	Runs int
	// WatchesOpen is the number of watch requests the Watcher's client had
	// open while every run was tracked, counted by its transport.
	WatchesOpen int64
	// APIServerWatches is the rise in the API server's
	// apiserver_longrunning_requests{verb="WATCH",scope="namespace"} for
	// jobs and pods while every run was tracked.
	APIServerWatches float64
	// Requests is every request the Watcher's client made, from New to
	// Close; RequestsPerRun divides it by Runs.
	Requests       int64
	RequestsPerRun float64
	// HeapPerRun is the rise in live heap (after GC) from before New to
	// the moment every run's Job and pod were cached and waited on,
	// divided by Runs; StackPerRun the same for goroutine stacks (one
	// goroutine per Wait, the caller's).
	HeapPerRun, StackPerRun float64
	// Tracked is how many Waits were still waiting at that moment.
	Tracked int
	// Wrong lists runs whose Result was not the expected one.
	Wrong []string
	// Elapsed is the child's time from New to the last Result.
	Elapsed time.Duration
}

// scale creates n Jobs with cycling fates in a new namespace, has a child
// process wait for all of them with one Watcher, and returns its figures.
func scale(tb testing.TB, n int, delay, jitter string) scaleFigures {
	tb.Helper()
	ns := cluster.NewNamespace(tb)
	conf := cluster.Config()
	conf.QPS, conf.Burst = 500, 1000
	client := clientFor(tb, conf)
	names := make([]string, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f := fates(i, delay, jitter)
				job := createJob(tb, client, ns, runJob(f.annotations, func(j *batchv1.Job) { j.Spec.BackoffLimit = new(f.backoff) }))
				names[i] = job.Name
			}
		})
	}
	wg.Wait()
	var stdin bytes.Buffer
	json.NewEncoder(&stdin).Encode(names)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), scaleChildEnv+"=1", "KUBECONFIG="+cluster.Kubeconfig(), "JOBWATCH_SCALE_NS="+ns)
	cmd.Stdin, cmd.Stderr = &stdin, testWriter{tb}
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("scale child: %v", err)
	}
	var fig scaleFigures
	if err := json.Unmarshal(out, &fig); err != nil {
		tb.Fatalf("scale child said %q: %v", out, err)
	}
	for _, w := range fig.Wrong {
		tb.Errorf("wrong result: %s", w)
	}
	return fig
}

func reportScale(tb testing.TB, fig scaleFigures) {
	tb.Logf("%d runs: %d watch requests open (API server: +%.0f), %d requests in all (%.3f per run), heap %.0f B per run, stack %.0f B per run, %d waiting at the measure, %v in all",
		fig.Runs, fig.WatchesOpen, fig.APIServerWatches, fig.Requests, fig.RequestsPerRun, fig.HeapPerRun, fig.StackPerRun, fig.Tracked, fig.Elapsed.Round(time.Second))
}

func TestE2EScale100RunsShareTwoWatches(t *testing.T) {
	fig := scale(t, 100, "10s", "20s")
	reportScale(t, fig)
	if fig.WatchesOpen > 2 || fig.APIServerWatches > 2 {
		t.Errorf("%d watches open (API server: %.0f), want at most 2 for any number of runs", fig.WatchesOpen, fig.APIServerWatches)
	}
}

// BenchmarkE2EScale1000 measures 1,000 concurrent runs; run it with
// -bench E2EScale1000 -benchtime 1x.
func BenchmarkE2EScale1000(b *testing.B) {
	for range b.N {
		fig := scale(b, 1000, "60s", "120s")
		reportScale(b, fig)
		b.ReportMetric(float64(fig.WatchesOpen), "watches")
		b.ReportMetric(fig.APIServerWatches, "apiserver-watches")
		b.ReportMetric(fig.RequestsPerRun, "requests/run")
		b.ReportMetric(fig.HeapPerRun, "heap-B/run")
		b.ReportMetric(fig.StackPerRun, "stack-B/run")
	}
}

// scaleChild is the child's side of scale: it prints scaleFigures as JSON
// and returns the exit code.
func scaleChild() int {
	if err := runScaleChild(); err != nil {
		fmt.Fprintln(os.Stderr, "scale child:", err)
		return 1
	}
	return 0
}

func runScaleChild() error {
	// JOBWATCH_HEAP_PROFILE=FILE writes an exact heap profile at the
	// measure, to see where a run's bytes go.
	profile := os.Getenv("JOBWATCH_HEAP_PROFILE")
	if profile != "" {
		runtime.MemProfileRate = 1
	}
	var names []string
	if err := json.NewDecoder(os.Stdin).Decode(&names); err != nil {
		return err
	}
	ns, n := os.Getenv("JOBWATCH_SCALE_NS"), len(names)
	conf, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	conf.QPS, conf.Burst = 500, 1000
	admin, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return err
	}
	counted := &scaletest.Transport{}
	wconf := rest.CopyConfig(conf)
	wconf.Wrap(counted.Wrap)
	client, err := kubernetes.NewForConfig(wconf)
	if err != nil {
		return err
	}
	ctx := context.Background()
	watchesBefore, err := scaletest.APIServerWatches(ctx, admin)
	if err != nil {
		return err
	}
	before := scaletest.Heap()
	start := time.Now()
	w := New(client, Options{})
	var fig scaleFigures
	fig.Runs = n
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var waiting atomic.Int64
	for i, name := range names {
		waiting.Add(1)
		wg.Go(func() {
			defer waiting.Add(-1)
			results[i], errs[i] = w.Wait(ctx, JobRef{Namespace: ns, Name: name}, WaitOptions{PodStartTimeout: -1, Deadline: 20 * time.Minute})
		})
	}
	// Measure once every Job and its pod are cached.
	for {
		w.mu.Lock()
		s := w.streams[ns]
		w.mu.Unlock()
		if s != nil && len(s.jobs.GetStore().ListKeys()) >= n && len(s.pods.GetStore().ListKeys()) >= n {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := scaletest.Heap()
	if profile != "" {
		if err := writeHeapProfile(profile); err != nil {
			return err
		}
	}
	fig.Tracked = int(waiting.Load())
	fig.HeapPerRun = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	fig.StackPerRun = float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n)
	fig.WatchesOpen = counted.OpenWatches()
	watchesAfter, err := scaletest.APIServerWatches(ctx, admin)
	if err != nil {
		return err
	}
	fig.APIServerWatches = watchesAfter - watchesBefore
	wg.Wait()
	fig.Elapsed = time.Since(start)
	w.Close()
	fig.Requests = counted.Requests()
	fig.RequestsPerRun = float64(fig.Requests) / float64(n)
	for i := range names {
		f := fates(i, "", "")
		if errs[i] != nil || results[i].Outcome != f.outcome || results[i].ExitCode != f.exitCode {
			fig.Wrong = append(fig.Wrong, fmt.Sprintf("run %d (%s): %s %d %v; want %s %d", i, names[i], results[i].Outcome, results[i].ExitCode, errs[i], f.outcome, f.exitCode))
		}
	}
	return json.NewEncoder(os.Stdout).Encode(fig)
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.WriteHeapProfile(f), f.Close())
}

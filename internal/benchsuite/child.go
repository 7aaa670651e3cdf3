package benchsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/worker"
)

// ChildEnv, set in a process's environment, makes ChildMain run the
// measured Worker instead of returning.
const ChildEnv = "KUBEWORKER_BENCH_CHILD"

// childArgs are the arguments the child is started with: a test binary
// must run no test (the child's work is done by ChildMain, from TestMain).
func childArgs() []string {
	if strings.HasSuffix(os.Args[0], ".test") {
		return []string{"-test.run=^$"}
	}
	return nil
}

// ChildMain runs the child's side of a scale, many-clusters or Kueue
// measurement
// and exits, when ChildEnv is set; otherwise it returns at once. Call it
// first thing in main and TestMain of a binary that runs the suite.
func ChildMain() {
	var err error
	switch os.Getenv(ChildEnv) {
	case "":
		return
	case clustersChildMode:
		err = clustersChild(bufio.NewReader(os.Stdin), os.Stdout)
	case kueueChildMode:
		err = kueueChild(bufio.NewReader(os.Stdin), os.Stdout)
	default:
		err = child(os.Stdin, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child reads its childParams, runs them all through one Worker, measures
// when the parent says "measure", and writes a childResult when every run
// has ended.
func child(in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	var p childParams
	if err := json.Unmarshal(line, &p); err != nil {
		return fmt.Errorf("params %q: %w", line, err)
	}
	kubeconfig, err := os.ReadFile(p.Kubeconfig)
	if err != nil {
		return err
	}
	// A rate limit out of the way: the measure is of following runs.
	conf, err := worker.Config(worker.ConfigOptions{Kubeconfig: kubeconfig, QPS: 1000, Burst: 2000})
	if err != nil {
		return err
	}
	counted := &scaletest.Transport{}
	conf.Wrap(counted.Wrap)
	kinds := &requestKinds{n: map[string]int64{}}
	conf.Wrap(metrics.WrapTransport(kinds))
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return err
	}
	ann := fmt.Sprintf(`[{"op": "add", "path": "/spec/template/metadata", "value": {"annotations": {%q: %q, %q: %q}}}]`,
		clustertest.AnnotationDelay, p.Delay, clustertest.AnnotationJitter, p.Jitter)

	before := scaletest.Heap()
	w, err := worker.New(client, worker.Options{
		Name: workerName, Namespace: p.Namespace,
		Prepare: manifest.PrepareOptions{Customizations: []byte(ann)},
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	res := childResult{Returned: make(map[string]int64, p.Runs)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var tracked atomic.Int64
	for i := range p.Runs {
		wg.Go(func() {
			var name string
			// Every wait is bounded: a run that takes longer is wrong.
			ctx, cancel := context.WithTimeout(ctx, p.RunTimeout)
			defer cancel()
			r, err := w.Run(ctx, worker.Run{
				ID: fmt.Sprintf("scale-%d", i),
				// Thousands of pods wait their turn with the scheduler
				// and kwok on two cores: more than the default minute.
				Values: map[string]any{"pod_watch_timeout_seconds": p.PodStartTimeout},
				Started: func(pid clusterid.PID) {
					name = pid.Name
					tracked.Add(1)
				},
			})
			now := time.Now().UnixNano()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Wrong = append(res.Wrong, fmt.Sprintf("run %d: %v", i, err))
			case r.Outcome != jobwatch.Succeeded:
				res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): %s, exit code %d", i, name, r.Outcome, r.ExitCode))
			default:
				res.Returned[name] = now
				if r.FromPod {
					res.FromPod++
				}
			}
		})
	}
	// The parent says when every pod runs.
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "measure" {
		return errors.Join(errors.New("the parent did not say measure"), err)
	}
	after := scaletest.Heap()
	res.HeapPerRun = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(p.Runs)
	res.StackPerRun = float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(p.Runs)
	res.WatchesOpen = counted.OpenWatches()
	res.Tracked = tracked.Load() // the runs that failed before their Job was made are Wrong
	wg.Wait()
	if err := w.Close(ctx); err != nil {
		return err
	}
	res.Requests = counted.Requests()
	res.RequestKinds = kinds.counts()
	return json.NewEncoder(out).Encode(res)
}

// requestKinds counts requests by verb, resource and status code.
type requestKinds struct {
	metrics.Discard
	mu sync.Mutex
	n  map[string]int64
}

func (k *requestKinds) APIRequest(r metrics.Request, code int) {
	k.mu.Lock()
	k.n[fmt.Sprintf("%s %s %d", r.Verb, r.Resource, code)]++
	k.mu.Unlock()
}

func (k *requestKinds) counts() map[string]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return maps.Clone(k.n)
}

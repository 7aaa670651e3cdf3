package benchsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/worker"
)

// clustersChildMode is ChildEnv's value that makes ChildMain run a
// many-clusters child.
const clustersChildMode = "clusters"

// countedConfig is the config of the kubeconfig file at path, with the
// rate limit out of the way, and its transport counted by t and kinds.
func countedConfig(path string, t *scaletest.Transport, kinds *requestKinds) (*rest.Config, error) {
	kubeconfig, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	conf, err := worker.Config(worker.ConfigOptions{Kubeconfig: kubeconfig, QPS: 1000, Burst: 2000})
	if err != nil {
		return nil, err
	}
	conf.Wrap(t.Wrap)
	conf.Wrap(metrics.WrapTransport(kinds))
	return conf, nil
}

// clustersChild reads its clustersParams, runs them through one Worker,
// says "ran" when every run has returned, closes the Worker when the
// parent says "close", and writes a clustersResult.
func clustersChild(r *bufio.Reader, out io.Writer) error {
	var p clustersParams
	if err := readParams(r, &p); err != nil {
		return err
	}
	kinds := &requestKinds{n: map[string]int64{}}
	own := &scaletest.Transport{}
	conf, err := countedConfig(p.Kubeconfig, own, kinds)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return err
	}
	opts := worker.Options{Name: workerName, Namespace: p.Namespace, ClusterName: ownClusterName}
	// second is the transport of the second cluster's client, if the
	// Worker is given one; inSecond the cluster_config that sends a run
	// there.
	var second *scaletest.Transport
	var inSecond map[string]any
	switch p.Way {
	case wayOne:
	case wayOptions:
		second = &scaletest.Transport{}
		confB, err := countedConfig(p.Second, second, kinds)
		if err != nil {
			return err
		}
		opts.Clusters = []worker.Cluster{{Name: secondClusterName, Config: confB}}
		inSecond = map[string]any{"context_name": secondClusterName}
	case wayRunConfig:
		raw, err := os.ReadFile(p.Second)
		if err != nil {
			return err
		}
		var kc map[string]any
		if err := yaml.Unmarshal(raw, &kc); err != nil {
			return fmt.Errorf("the second cluster's kubeconfig: %w", err)
		}
		opts.RunClusters = worker.RunClusters{Allow: true}
		inSecond = map[string]any{"config": kc}
	default:
		return fmt.Errorf("unknown way %q", p.Way)
	}
	clusters := 1
	if inSecond != nil {
		clusters = 2
	}

	before := scaletest.Heap()
	w, err := worker.New(client, opts)
	if err != nil {
		return err
	}
	ctx := context.Background()
	res := clustersResult{Results: map[string]int{}}
	// runCluster is the name Results give the second cluster when runs
	// reach it by their cluster_config: its UID, the same for every run.
	var runCluster string
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range p.Runs {
		wg.Go(func() {
			values := map[string]any{"pod_watch_timeout_seconds": p.PodStartTimeout}
			want := ownClusterName
			if sendsTo(i, clusters) == 1 {
				values["cluster_config"] = inSecond
				want = secondClusterName
			}
			// Every wait is bounded: a run that takes longer is wrong.
			ctx, cancel := context.WithTimeout(ctx, p.RunTimeout)
			defer cancel()
			r, err := w.Run(ctx, worker.RunSpec{ID: fmt.Sprintf("clusters-%d", i), Values: values})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Wrong = append(res.Wrong, fmt.Sprintf("run %d: %v", i, err))
				return
			}
			res.Results[r.Cluster]++
			if want == secondClusterName && p.Way == wayRunConfig && r.Cluster != ownClusterName {
				if runCluster == "" {
					runCluster = r.Cluster
				}
				want = runCluster
			}
			switch {
			case r.Outcome != jobwatch.Succeeded:
				res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): %s, exit code %d", i, r.PID, r.Outcome, r.ExitCode))
			case r.Cluster != want:
				res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): ran in cluster %q, want %q", i, r.PID, r.Cluster, want))
			}
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	ran := scaletest.Heap()
	res.WatchesOpen = []int64{own.OpenWatches()}
	switch {
	case second != nil:
		res.WatchesOpen = append(res.WatchesOpen, second.OpenWatches())
	case clusters > 1:
		res.WatchesOpen = append(res.WatchesOpen, -1) // the Worker's own client
	}
	fmt.Fprintln(out, "ran")
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "close" {
		w.Close(ctx)
		return errors.Join(errors.New("the parent did not say close"), err)
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	closed := scaletest.Heap()
	time.Sleep(p.Settle)
	settled := scaletest.Heap()
	perRun := func(m runtime.MemStats) float64 {
		return float64(int64(m.HeapAlloc)-int64(before.HeapAlloc)) / float64(p.Runs)
	}
	res.HeapRan, res.HeapClosed, res.HeapSettled = perRun(ran), perRun(closed), perRun(settled)
	res.Requests = own.Requests()
	if second != nil {
		res.Requests += second.Requests()
	}
	res.RequestKinds = kinds.counts()
	return json.NewEncoder(out).Encode(res)
}

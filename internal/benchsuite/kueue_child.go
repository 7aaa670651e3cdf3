package benchsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

// kueueChildMode is ChildEnv's value that makes ChildMain run a Kueue
// child.
const kueueChildMode = "kueue"

// kueueRun is what the Kueue child notes of one run, apart from its
// Result; its fields are guarded by the child's lock.
type kueueRun struct {
	job     string    // the Job's name, from Started
	created time.Time // when Started was called
	// sinkAt is when the run's EventSink first received ReasonAdmitted,
	// for the Workload sinkWorkload.
	sinkAt       time.Time
	sinkWorkload string
}

// kueueChild reads its kueueParams, starts the independent Workload
// watch, runs the runs through one Worker, says "ran" when every run has
// returned, closes the Worker when the parent says "close", and writes a
// kueueResult.
func kueueChild(r *bufio.Reader, out io.Writer) error {
	var p kueueParams
	if err := readParams(r, &p); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw, err := startAdmissionWatch(ctx, p.Kubeconfig, p.Namespace)
	if err != nil {
		return err
	}

	kinds := &requestKinds{n: map[string]int64{}}
	counted := &scaletest.Transport{}
	conf, err := countedConfig(p.Kubeconfig, counted, kinds)
	if err != nil {
		return err
	}
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
	res := kueueResult{Outcomes: map[string]int{}}
	runs := make([]kueueRun, p.Runs)
	results := make([]*worker.Result, p.Runs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range p.Runs {
		wg.Go(func() {
			sink := jobwatch.EventFunc(func(e jobwatch.Event) {
				if e.Reason != jobwatch.ReasonAdmitted || e.Workload == "" {
					return
				}
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if runs[i].sinkAt.IsZero() {
					runs[i].sinkAt, runs[i].sinkWorkload = now, e.Workload
				}
			})
			// Every wait is bounded: a run that takes longer is wrong.
			ctx, cancel := context.WithTimeout(ctx, p.RunTimeout)
			defer cancel()
			rr, err := w.Run(ctx, worker.RunSpec{
				ID: kueueRunID(i),
				Values: map[string]any{"pod_watch_timeout_seconds": p.PodStartTimeout,
					"queue_name": p.LocalQueue, "cpu_request": "1"},
				Events: sink,
				Started: func(pid clusterid.PID) {
					now := time.Now()
					mu.Lock()
					runs[i].job, runs[i].created = pid.Name, now
					mu.Unlock()
				},
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Outcomes["error"]++
				res.Wrong = append(res.Wrong, fmt.Sprintf("run %d: %v", i, err))
				return
			}
			results[i] = &rr
			res.Outcomes[rr.Outcome.String()]++
			if rr.Outcome != jobwatch.Succeeded {
				wrong := fmt.Sprintf("run %d (%s): %s, exit code %d", i, rr.PID, rr.Outcome, rr.ExitCode)
				if rr.Message != "" {
					wrong += ": " + rr.Message
				}
				res.Wrong = append(res.Wrong, wrong)
			}
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	ran := scaletest.Heap()
	res.HeapRan = float64(int64(ran.HeapAlloc)-int64(before.HeapAlloc)) / float64(p.Runs)
	res.WatchesOpen = counted.OpenWatches()
	// A sink may get its admission before the independent watch does:
	// give the watch a moment to catch up with every sink.
	mu.Lock()
	var workloads []string
	for _, run := range runs {
		if run.sinkWorkload != "" {
			workloads = append(workloads, run.sinkWorkload)
		}
	}
	mu.Unlock()
	raw.waitFor(ctx, workloads, 30*time.Second)
	fmt.Fprintln(out, "ran")
	if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "close" {
		w.Close(ctx)
		return errors.Join(errors.New("the parent did not say close"), err)
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	res.Requests = counted.Requests()
	res.RequestKinds = kinds.counts()
	mu.Lock()
	defer mu.Unlock()
	matchAdmissions(&res, runs, results, raw.admissions())
	res.RawWatchReconnects = raw.reconnects()
	return json.NewEncoder(out).Encode(res)
}

// kueueRunID is the ID of run i.
func kueueRunID(i int) string { return fmt.Sprintf("kueue-%d", i) }

// matchAdmissions puts in res each run's wait for admission and the delay
// from the independent watch's admission to its sink's, following
// Workload → Job (the Workload's job-uid label and its owner reference
// to the Job) → run (the Job's run-ID label, in Result.RunID), and lists
// in res.Wrong every run that cannot be timed or does not match.
func matchAdmissions(res *kueueResult, runs []kueueRun, results []*worker.Result, byJob map[string]admission) {
	for i, rr := range results {
		if rr == nil {
			continue // an error, listed already
		}
		if q := rr.Queue; q != nil {
			if q.Waited > 0 {
				res.Waited = append(res.Waited, q.Waited)
			}
			if !q.AdmittedAt.IsZero() && !rr.FinishedAt.IsZero() && !rr.StartedAt.IsZero() {
				res.Held = append(res.Held, rr.FinishedAt.Sub(q.AdmittedAt))
				res.Start = append(res.Start, rr.StartedAt.Sub(q.AdmittedAt))
			}
		}
		run := runs[i]
		a, ok := byJob[rr.PID.Name]
		switch {
		case rr.RunID != kueueRunID(i):
			res.Wrong = append(res.Wrong, fmt.Sprintf("run %d: its Job %s has run ID %q", i, rr.PID.Name, rr.RunID))
		case run.job != rr.PID.Name:
			res.Wrong = append(res.Wrong, fmt.Sprintf("run %d: Started named Job %q, the Result %q", i, run.job, rr.PID.Name))
		case !ok:
			res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): the independent watch saw no admitted Workload of its Job", i, rr.PID.Name))
		case a.jobUID != a.ownerUID:
			res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): Workload %s has job-uid %s but its Job owner has UID %s", i, rr.PID.Name, a.workload, a.jobUID, a.ownerUID))
		case run.sinkAt.IsZero():
			res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): its EventSink got no %s event", i, rr.PID.Name, jobwatch.ReasonAdmitted))
		case run.sinkWorkload != a.workload:
			res.Wrong = append(res.Wrong, fmt.Sprintf("run %d (%s): its sink's admission names Workload %s, the watch %s", i, rr.PID.Name, run.sinkWorkload, a.workload))
		default:
			res.Admission = append(res.Admission, run.sinkAt.Sub(a.at))
			res.Queued = append(res.Queued, a.at.Sub(run.created))
			if res.FirstAdmission.IsZero() || a.at.Before(res.FirstAdmission) {
				res.FirstAdmission = a.at
			}
			if a.at.After(res.LastAdmission) {
				res.LastAdmission = a.at
			}
		}
	}
}

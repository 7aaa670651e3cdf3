package benchsuite

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/worker"
)

// overloadName names the burst's user, its FlowSchema and its priority
// level.
const overloadName = "kubeworker-overload"

// Overload is a burst of runs submitted at once while API Priority and
// Fairness starves the Worker's requests: they all go to a priority
// level of a few seats that may not borrow, with short queues, so the API
// server queues them, times them out and rejects them with 429. Every run
// must end with its scripted outcome all the same.
type Overload struct {
	Runs int
	// Seats is the priority level's concurrency limit as the API server
	// set it (apiserver_flowcontrol_nominal_limit_seats); Queues and
	// QueueLength its queueing.
	Seats               float64
	Queues, QueueLength int32
	// Elapsed is from the first Run to the last Run's return.
	Elapsed time.Duration
	// Outcomes counts the runs by how they ended ("Succeeded",
	// "Failed 3", "error", …).
	Outcomes map[string]int
	// Wrong lists the runs that did not end as scripted: a Run error, a
	// wrong outcome or exit code, more or fewer than one Job.
	Wrong []string
	// Dispatched and Rejected are the API server's count of the level's
	// requests it served and refused with 429
	// (apiserver_flowcontrol_*_requests_total), Rejected by reason.
	Dispatched float64
	Rejected   map[string]float64
	// APIServerRequests is the rise in apiserver_request_total for the
	// kinds of request a Worker makes (as Scale's), APIServer429 those of
	// them answered 429, APIServerJobLists its namespaced LISTs of Jobs.
	APIServerRequests, APIServer429, APIServerJobLists float64
	// ClientRequests counts the Worker client's requests (client-go's own
	// retries of a 429 with Retry-After included), ClientRequestKinds by
	// "verb resource code".
	ClientRequests     int64
	ClientRequestKinds map[string]int64
	// CreateRetries is how many create attempts after the first the
	// Creator made (metrics.Recorder.CreateAttempt).
	CreateRetries int64
}

// overloadFate is run i's scripted end: its pod annotations, outcome and
// exit code. Seven in ten succeed, two fail with exit code 3, one is
// OOM-killed.
func overloadFate(i int) (map[string]any, jobwatch.Outcome, int) {
	ann := map[string]any{clustertest.AnnotationDelay: "2s", clustertest.AnnotationJitter: "20s"}
	switch i % 10 {
	case 7, 8:
		ann[clustertest.AnnotationExitCode] = "3"
		return ann, jobwatch.Failed, 3
	case 9:
		ann[clustertest.AnnotationExitCode] = "137"
		ann[clustertest.AnnotationReason] = "OOMKilled"
		return ann, jobwatch.OOMKilled, 137
	}
	return ann, jobwatch.Succeeded, 0
}

// measureOverload starves a user of its own with APF, then has a Worker
// of that user run n runs at once, each bounded in time; what goes wrong
// is counted, not waited for.
func measureOverload(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, opts Options, n int) (o Overload, err error) {
	o = Overload{Runs: n, Queues: 8, QueueLength: 10, Outcomes: map[string]int{}, Rejected: map[string]float64{}}
	ns, err := newNamespace(ctx, admin, fmt.Sprintf("bench-overload-%d", n))
	if err != nil {
		return o, err
	}
	undo, seats, err := scaletest.Starve(ctx, admin, overloadName, o.Queues, o.QueueLength)
	if err != nil {
		return o, err
	}
	o.Seats = seats
	defer func() {
		if uerr := undo(context.WithoutCancel(ctx)); uerr != nil && err == nil {
			err = uerr
		}
	}()
	conf, err := cluster.UserConfig(overloadName)
	if err != nil {
		return o, err
	}
	// The client's own rate limit out of the way: the API server is what
	// holds the burst back.
	conf = withLimits(conf, 5000, 10000)
	var counted atomic.Int64
	conf.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { counted.Add(1); return rt.RoundTrip(r) })
	})
	kinds := &requestKinds{n: map[string]int64{}}
	conf.Wrap(metrics.WrapTransport(kinds))
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return o, err
	}
	rec := &retryCount{}
	w, err := worker.New(client, worker.Options{Name: workerName + "-overload", Namespace: ns, Template: jobtest.FateTemplate(), Metrics: rec})
	if err != nil {
		return o, err
	}
	defer w.Close(context.WithoutCancel(ctx))

	before, err := overloadMetrics(ctx, admin)
	if err != nil {
		return o, err
	}
	fmt.Fprintf(opts.Progress, "bench: overload: %d runs at once, the Worker's user held to %.0f seats of the API server\n", n, o.Seats)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			ann, want, code := overloadFate(i)
			// Bounded: pods wait their turn with the scheduler and kwok,
			// and the API server holds every request of the Worker back.
			rctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
			defer cancel()
			res, err := w.Run(rctx, worker.Run{ID: fmt.Sprintf("overload-%d", i), Values: map[string]any{
				"pod_annotations": ann, "pod_watch_timeout_seconds": 900, "stream_output": false,
			}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				o.Outcomes["error"]++
				o.Wrong = append(o.Wrong, fmt.Sprintf("run %d: %v", i, err))
			case res.Outcome != want || res.ExitCode != code:
				o.Outcomes[fmt.Sprintf("%s %d", res.Outcome, res.ExitCode)]++
				o.Wrong = append(o.Wrong, fmt.Sprintf("run %d (%s): %s, exit code %d; want %s, %d", i, res.PID.Name, res.Outcome, res.ExitCode, want, code))
			default:
				o.Outcomes[fmt.Sprintf("%s %d", res.Outcome, res.ExitCode)]++
			}
		})
	}
	wg.Wait()
	o.Elapsed = time.Since(start)
	after, err := overloadMetrics(ctx, admin)
	if err != nil {
		return o, err
	}
	o.Dispatched = after.dispatched - before.dispatched
	for reason, v := range after.rejected {
		if d := v - before.rejected[reason]; d > 0 {
			o.Rejected[reason] = d
		}
	}
	o.APIServerRequests, o.APIServer429, o.APIServerJobLists = after.requests-before.requests, after.tooMany-before.tooMany, after.jobLists-before.jobLists
	o.ClientRequests, o.ClientRequestKinds, o.CreateRetries = counted.Load(), kinds.counts(), rec.retries.Load()

	// One Job per run, read by the admin, who is not starved.
	jobs, err := admin.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return o, err
	}
	perRun := map[string]int{}
	for _, j := range jobs.Items {
		perRun[j.Labels[manifest.LabelRunID]]++
	}
	for i := range n {
		if c := perRun[fmt.Sprintf("overload-%d", i)]; c != 1 {
			o.Wrong = append(o.Wrong, fmt.Sprintf("run %d has %d Jobs, want 1", i, c))
		}
	}
	sort.Strings(o.Wrong)
	return o, nil
}

// overloadFigures are the API server's counters the burst is judged by.
type overloadFigures struct {
	dispatched, requests, tooMany, jobLists float64
	rejected                                map[string]float64
}

func overloadMetrics(ctx context.Context, admin kubernetes.Interface) (f overloadFigures, err error) {
	ours := func(l map[string]string) bool { return l["priority_level"] == overloadName }
	if f.dispatched, err = scaletest.SumMetric(ctx, admin, "apiserver_flowcontrol_dispatched_requests_total{", ours); err != nil {
		return f, err
	}
	f.rejected = map[string]float64{}
	for _, reason := range []string{"queue-full", "concurrency-limit", "time-out", "cancelled"} {
		v, err := scaletest.SumMetric(ctx, admin, "apiserver_flowcontrol_rejected_requests_total{", func(l map[string]string) bool {
			return ours(l) && l["reason"] == reason
		})
		if err != nil {
			return f, err
		}
		f.rejected[reason] = v
	}
	if f.requests, err = apiserverRequests(ctx, admin); err != nil {
		return f, err
	}
	if f.jobLists, err = apiserverJobLists(ctx, admin); err != nil {
		return f, err
	}
	f.tooMany, err = scaletest.SumMetric(ctx, admin, "apiserver_request_total{", func(l map[string]string) bool {
		return l["code"] == "429" // only the starved user is refused
	})
	return f, err
}

// retryCount counts the Creator's retries.
type retryCount struct {
	metrics.Discard
	retries atomic.Int64
}

func (r *retryCount) CreateAttempt(retry bool) {
	if retry {
		r.retries.Add(1)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// rejectedString writes the rejections by reason, largest first.
func rejectedString(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for reason, v := range m {
		parts = append(parts, fmt.Sprintf("%.0f %s", v, reason))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

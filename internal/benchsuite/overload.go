package benchsuite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	undo, err := starve(ctx, admin, o.Queues, o.QueueLength)
	if err != nil {
		return o, err
	}
	defer func() {
		if uerr := undo(context.WithoutCancel(ctx)); uerr != nil && err == nil {
			err = uerr
		}
	}()
	if o.Seats, err = waitForLevel(ctx, admin); err != nil {
		return o, err
	}
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

// starve makes API Priority and Fairness put every request of the user
// overloadName in a priority level of its own with the fewest seats it
// can have (1 share of the server's concurrency, none borrowed) and
// short queues, and binds the user to cluster-admin, so RBAC is not what
// stops it. It returns what undoes all three.
func starve(ctx context.Context, admin kubernetes.Interface, queues, queueLength int32) (undo func(context.Context) error, err error) {
	fc := admin.FlowcontrolV1()
	plc := &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: overloadName},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: new(int32(1)),
				LendablePercent:          new(int32(0)),
				BorrowingLimitPercent:    new(int32(0)),
				LimitResponse: flowcontrolv1.LimitResponse{
					Type:    flowcontrolv1.LimitResponseTypeQueue,
					Queuing: &flowcontrolv1.QueuingConfiguration{Queues: queues, HandSize: 2, QueueLengthLimit: queueLength},
				},
			},
		},
	}
	all := []string{flowcontrolv1.VerbAll}
	fs := &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: overloadName},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: overloadName},
			MatchingPrecedence:         1000, // before global-default (9900), after the system's own
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByNamespaceType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects:         []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: overloadName}}},
				ResourceRules:    []flowcontrolv1.ResourcePolicyRule{{Verbs: all, APIGroups: all, Resources: all, ClusterScope: true, Namespaces: []string{flowcontrolv1.NamespaceEvery}}},
				NonResourceRules: []flowcontrolv1.NonResourcePolicyRule{{Verbs: all, NonResourceURLs: all}},
			}},
		},
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: overloadName},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: overloadName}},
	}
	undo = func(ctx context.Context) error {
		var errs []error
		for _, del := range []func() error{
			func() error { return fc.FlowSchemas().Delete(ctx, overloadName, metav1.DeleteOptions{}) },
			func() error {
				return fc.PriorityLevelConfigurations().Delete(ctx, overloadName, metav1.DeleteOptions{})
			},
			func() error {
				return admin.RbacV1().ClusterRoleBindings().Delete(ctx, overloadName, metav1.DeleteOptions{})
			},
		} {
			if err := del(); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("undo the starvation: %w", err)
		}
		return nil
	}
	if _, err := fc.PriorityLevelConfigurations().Create(ctx, plc, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create the starved priority level: %w", err)
	}
	if _, err := fc.FlowSchemas().Create(ctx, fs, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create the starved flow schema: %w (%v)", err, undo(ctx))
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("bind the overload user: %w (%v)", err, undo(ctx))
	}
	return undo, nil
}

// waitForLevel waits, up to a minute, until the API server has set up the
// starved priority level, and returns its seats.
func waitForLevel(ctx context.Context, admin kubernetes.Interface) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		seats, err := scaletest.SumMetric(ctx, admin, "apiserver_flowcontrol_nominal_limit_seats{", func(l map[string]string) bool {
			return l["priority_level"] == overloadName
		})
		if err == nil && seats > 0 {
			return seats, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the API server did not set up priority level %s: %w (%v)", overloadName, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
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

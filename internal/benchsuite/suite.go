package benchsuite

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clustertest"
)

// workerName names the measured Workers; their Jobs carry it as
// worker.LabelWorker, which the parent's watch selects on.
const workerName = "bench"

// Options say what to measure. The zero value measures 1,000 runs.
type Options struct {
	// Sizes are the numbers of concurrent runs to measure. Default 1000.
	Sizes []int
	// SubmitJobs is how many Jobs each way of creating makes in a
	// submission round. Default 1000.
	SubmitJobs int
	// SubmitRounds is how many submission rounds to run; the median
	// round counts. Default 7.
	SubmitRounds int
	// Concurrency is how many goroutines create Jobs in a submission
	// round, for the raw loop and the Worker alike. Default 16.
	Concurrency int
	// RunTime is the least time a pod of a scale measurement runs, so that
	// every run is tracked at once; each pod runs a uniformly random time
	// between RunTime and twice that. Default 30 ms per run, at least 20 s.
	RunTime time.Duration
	// Overload is how many runs the overload burst submits at once while
	// the API server starves the Worker (see Overload). Default 0: no
	// burst.
	Overload int
	// Clusters is how many runs the many-clusters measurement makes each
	// way: all in the suite's cluster, then half in a second cluster it
	// starts (see Clusters). Default 0: none.
	Clusters int
	// Kueue is how many runs the Kueue measurement sends through one
	// LocalQueue (see Kueue); it starts Kueue on the cluster, and leaves
	// it running. Default 0: none.
	Kueue int
	// Fleet is how many running runs the takeover measurement has three
	// replica processes take over from one SIGKILLed (see Fleet). Default
	// 0: none.
	Fleet int
	// KueueQuota is how many of the Kueue measurement's runs its
	// ClusterQueue admits at once: its CPU quota, each pod requesting one
	// CPU. Default 100.
	KueueQuota int
	// Only, when set, names the measurements to take, of "scale",
	// "submit", "overload", "clusters" and "kueue" ("prepare" is
	// MeasurePrepare's, and Run takes it as a name only); the rest are
	// skipped. Overload, Clusters and Kueue of 0 skip theirs all the
	// same. Default: all of them.
	Only []string
	// Progress gets a line per step. Default: discard.
	Progress io.Writer
}

func (o Options) withDefaults() Options {
	if len(o.Sizes) == 0 {
		o.Sizes = []int{1000}
	}
	if o.SubmitJobs == 0 {
		o.SubmitJobs = 1000
	}
	if o.SubmitRounds == 0 {
		o.SubmitRounds = 7
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

func (o Options) kueueQuota() int {
	if o.KueueQuota > 0 {
		return o.KueueQuota
	}
	return 100
}

// measurements are the names Options.Only takes.
var measurements = []string{"prepare", "scale", "submit", "overload", "clusters", "fleet", "kueue"}

// Takes says whether o asks for the measurement called name (one of
// Options.Only's names).
func (o Options) Takes(name string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, name)
}

// Check returns an error naming every unknown measurement in o.Only; Run
// calls it first.
func (o Options) Check() error {
	var bad []string
	for _, name := range o.Only {
		if !slices.Contains(measurements, name) {
			bad = append(bad, fmt.Sprintf("%q", name))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("Options.Only: unknown %s (known: %s)", strings.Join(bad, ", "), strings.Join(measurements, ", "))
	}
	return nil
}

func (o Options) runTime(n int) time.Duration {
	if o.RunTime > 0 {
		return o.RunTime
	}
	return max(20*time.Second, time.Duration(n)*30*time.Millisecond)
}

// Report is every figure of one suite run.
type Report struct {
	// Machine says where it ran: CPUs, OS and architecture, Go version.
	Machine string
	// CPUs is how many CPUs the machine has.
	CPUs int
	// Started is when the suite began; Took how long it ran.
	Started time.Time
	Took    time.Duration
	Prepare Prepare
	Submit  []Submission
	Scale   []Scale
	// Overload is the overload burst, if Options.Overload asked for one.
	Overload *Overload
	// Clusters is the many-clusters measurement, if Options.Clusters
	// asked for one.
	Clusters *Clusters
	// Kueue is the Kueue measurement, if Options.Kueue asked for one.
	Kueue *Kueue
	// Fleet is the takeover measurement, if Options.Fleet asked for one.
	Fleet *Fleet
}

// Run measures kubeworker on cluster and returns the figures, all but
// Prepare, which needs no cluster (see MeasurePrepare). It creates its own
// namespaces and leaves them for the cluster's Stop; a second cluster
// it starts (Options.Clusters) it stops. Kueue (Options.Kueue) it starts
// on cluster and leaves running, after every other measurement.
func Run(ctx context.Context, cluster *clustertest.Cluster, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	if err := opts.Check(); err != nil {
		return nil, err
	}
	rep := &Report{
		Machine: fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version()),
		CPUs:    runtime.NumCPU(),
		Started: time.Now(),
	}
	admin, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		return nil, err
	}
	// Scale first: the submission rounds leave ~49,000 suspended Jobs
	// behind, and a 1,000-run scale measurement after them saw 632 pods
	// miss their start timeout.
	var sizes []int
	if opts.Takes("scale") {
		sizes = opts.Sizes
	}
	for _, n := range sizes {
		fmt.Fprintf(opts.Progress, "bench: %d concurrent runs\n", n)
		s, err := measureScale(ctx, cluster, admin, opts, n)
		if err != nil {
			return nil, fmt.Errorf("%d runs: %w", n, err)
		}
		rep.Scale = append(rep.Scale, s)
	}
	if opts.Overload > 0 && opts.Takes("overload") {
		fmt.Fprintf(opts.Progress, "bench: overload burst of %d runs\n", opts.Overload)
		o, err := measureOverload(ctx, cluster, admin, opts, opts.Overload)
		if err != nil {
			return nil, fmt.Errorf("overload burst of %d runs: %w", opts.Overload, err)
		}
		rep.Overload = &o
	}
	if opts.Clusters > 0 && opts.Takes("clusters") {
		fmt.Fprintf(opts.Progress, "bench: %d runs in one cluster, then spread over two\n", opts.Clusters)
		c, err := measureClusters(ctx, cluster, admin, opts, opts.Clusters)
		if err != nil {
			return nil, fmt.Errorf("many clusters, %d runs: %w", opts.Clusters, err)
		}
		rep.Clusters = &c
	}
	type submission struct {
		qps      float32
		burst    int
		isolated bool
	}
	var submissions []submission
	if opts.Takes("submit") {
		submissions = []submission{{100, 200, false}, {5000, 10000, true}, {5000, 10000, false}}
	}
	for _, m := range submissions {
		where := "sharing every CPU"
		if m.isolated {
			where = "control plane on CPU 0, client on the others"
		}
		fmt.Fprintf(opts.Progress, "bench: submission of %d Jobs at %g QPS, %s, %d rounds\n", opts.SubmitJobs, m.qps, where, opts.SubmitRounds)
		s, err := measureSubmission(ctx, cluster, admin, opts, m.qps, m.burst, m.isolated)
		if err != nil {
			return nil, fmt.Errorf("submission at %g QPS, %s: %w", m.qps, where, err)
		}
		rep.Submit = append(rep.Submit, s)
	}
	if opts.Fleet > 0 && opts.Takes("fleet") {
		fmt.Fprintf(opts.Progress, "bench: takeover of %d running runs by two replicas from a third, SIGKILLed\n", opts.Fleet)
		f, err := measureFleet(ctx, cluster, admin, opts, opts.Fleet)
		if err != nil {
			return nil, fmt.Errorf("fleet, %d runs: %w", opts.Fleet, err)
		}
		rep.Fleet = &f
	}
	// Kueue last: once started, it runs until the cluster stops, and
	// watches every Job.
	if opts.Kueue > 0 && opts.Takes("kueue") {
		fmt.Fprintf(opts.Progress, "bench: %d runs through one Kueue LocalQueue, quota for %d\n", opts.Kueue, opts.kueueQuota())
		k, err := measureKueue(ctx, cluster, admin, opts, opts.Kueue)
		if err != nil {
			return nil, fmt.Errorf("kueue, %d runs: %w", opts.Kueue, err)
		}
		rep.Kueue = &k
	}
	rep.Took = time.Since(rep.Started)
	return rep, nil
}

// newNamespace creates a namespace named from prefix.
func newNamespace(ctx context.Context, admin kubernetes.Interface, prefix string) (string, error) {
	ns, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace: %w", err)
	}
	return ns.Name, nil
}

// withLimits copies conf with a client rate limit.
func withLimits(conf *rest.Config, qps float32, burst int) *rest.Config {
	c := rest.CopyConfig(conf)
	c.QPS, c.Burst = qps, burst
	return c
}

// percentile returns the p-th percentile (0 < p ≤ 100) of ds, nearest
// rank; zero for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

package benchsuite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/fleettest"
	"github.com/kubeworker/kubeworker/jobcreate"
)

// Fleet is the takeover measurement: three worker replicas, each a
// process (internal/fleettest); Runs runs start on replica a and run
// (for an hour); once every one runs, a is SIGKILLed, and the two others
// take its runs over when its Lease expires. The figures say how soon,
// and what the takeover costs the API server.
type Fleet struct {
	Runs int
	// LeaseDuration, RenewDeadline and RetryPeriod are the replicas'.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// QPS and Burst are each replica's client's.
	QPS   float32
	Burst int
	// KillToExpiry is from the SIGKILL to a's Lease's expiry (its last
	// renewTime plus its leaseDurationSeconds, the API server's clock);
	// FirstTakeover and LastTakeover are from that expiry to the first
	// and the last "took the run over" of a survivor (the replicas' clocks,
	// the same machine's).
	KillToExpiry, FirstTakeover, LastTakeover time.Duration
	// TakenOver counts the runs taken over, by replica.
	TakenOver map[string]int
	// APIServerRequests are the requests of the kinds a Worker makes
	// (apiserver_request_total) from the SIGKILL to a second after the last
	// takeover, by kind.
	APIServerRequests map[string]float64
	// APIServerWatches is the change of namespaced watches (jobs, pods)
	// on the API server over the same time: the survivors follow the runs
	// they take over on the streams they have.
	APIServerWatches map[string]float64
	// Elapsed is the whole measurement.
	Elapsed time.Duration
	Wrong   []string
}

// RequestsPerRun is the API server's requests per run taken over.
func (f *Fleet) RequestsPerRun() float64 {
	var sum float64
	for _, v := range f.APIServerRequests {
		sum += v
	}
	return sum / float64(max(f.Runs, 1))
}

func measureFleet(ctx context.Context, cluster *clustertest.Cluster, admin kubernetes.Interface, opts Options, n int) (f Fleet, err error) {
	start := time.Now()
	f = Fleet{Runs: n, LeaseDuration: 5 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: time.Second, QPS: 200, Burst: 400}
	defer func() { f.Elapsed = time.Since(start) }()
	ns, err := newNamespace(ctx, admin, "bench-fleet")
	if err != nil {
		return f, err
	}
	events := make(chan fleettest.Event, 4096)
	var mu sync.Mutex
	var killed time.Time // zero until the SIGKILL
	takeovers := map[string]time.Time{}
	var early int // takeovers before the SIGKILL: a replica lost its Lease
	f.TakenOver = map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			if e.Kind != "takeover" {
				continue
			}
			mu.Lock()
			switch _, ok := takeovers[e.Run]; {
			case killed.IsZero():
				early++
			case !ok:
				takeovers[e.Run] = e.At
				f.TakenOver[e.Replica]++
			}
			mu.Unlock()
		}
	}()
	var replicas []*fleettest.Replica
	defer func() {
		for _, r := range replicas {
			r.Kill()
		}
		close(events)
		<-done
	}()
	var stderr bytes.Buffer
	for _, id := range []string{"a", "b", "c"} {
		r, err := fleettest.Start(ctx, fleettest.Params{
			Kubeconfig: cluster.Kubeconfig(), Namespace: ns, Identity: id,
			LeaseDuration: f.LeaseDuration, RenewDeadline: f.RenewDeadline, RetryPeriod: f.RetryPeriod, Resync: f.LeaseDuration,
			QPS: f.QPS, Burst: f.Burst,
		}, events, io.MultiWriter(&stderr, opts.Progress))
		if err != nil {
			return f, err
		}
		replicas = append(replicas, r)
	}
	a := replicas[0]
	for i := range n {
		err := a.Send(fleettest.Run{ID: fmt.Sprintf("run-%05d", i), Values: map[string]any{
			"pod_annotations": map[string]any{clustertest.AnnotationDelay: "1h"}, "pod_watch_timeout_seconds": 900,
		}})
		if err != nil {
			return f, err
		}
	}
	fmt.Fprintf(opts.Progress, "bench: fleet: waiting for %d runs to run on replica a\n", n)
	if err := waitActive(ctx, admin, ns, n, 15*time.Minute); err != nil {
		return f, err
	}
	watchesBefore, err := apiserverWatches(ctx, admin)
	if err != nil {
		return f, err
	}
	reqBefore, err := apiserverRequestKinds(ctx, admin)
	if err != nil {
		return f, err
	}
	owned, err := ownedBy(ctx, admin, ns, "a/")
	if err != nil {
		return f, err
	}
	mu.Lock()
	killed = time.Now()
	if early > 0 {
		f.Wrong = append(f.Wrong, fmt.Sprintf("%d runs were taken over before the SIGKILL: a replica lost its Lease while the runs started", early))
	}
	mu.Unlock()
	a.Kill()
	lease, err := admin.CoordinationV1().Leases(ns).Get(ctx, "fleet-a", metav1.GetOptions{})
	if err != nil {
		return f, fmt.Errorf("read a's Lease: %w", err)
	}
	var expiry time.Time
	if lease.Spec.RenewTime != nil && lease.Spec.LeaseDurationSeconds != nil {
		expiry = lease.Spec.RenewTime.Add(time.Duration(*lease.Spec.LeaseDurationSeconds) * time.Second)
	}
	f.KillToExpiry = expiry.Sub(killed)
	deadline := time.Now().Add(10 * time.Minute)
	for {
		mu.Lock()
		got := len(takeovers)
		mu.Unlock()
		if got >= owned {
			break
		}
		if time.Now().After(deadline) {
			return f, fmt.Errorf("%d of a's %d runs taken over in 10 minutes", got, owned)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	mu.Lock()
	var first, last time.Time
	for _, at := range takeovers {
		if first.IsZero() || at.Before(first) {
			first = at
		}
		if at.After(last) {
			last = at
		}
	}
	mu.Unlock()
	f.FirstTakeover, f.LastTakeover = first.Sub(expiry), last.Sub(expiry)
	watchesAfter, err := apiserverWatches(ctx, admin)
	if err != nil {
		return f, err
	}
	reqAfter, err := apiserverRequestKinds(ctx, admin)
	if err != nil {
		return f, err
	}
	f.APIServerWatches = map[string]float64{}
	for r, v := range watchesAfter {
		f.APIServerWatches[r] = v - watchesBefore[r]
	}
	f.APIServerRequests = map[string]float64{}
	for kind, v := range reqAfter {
		if d := v - reqBefore[kind]; d != 0 {
			f.APIServerRequests[kind] = d
		}
	}
	// The runs would run for an hour: the namespace goes, with them.
	if err := admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		f.Wrong = append(f.Wrong, fmt.Sprintf("delete namespace %s: %v", ns, err))
	}
	return f, nil
}

// ownedBy counts the Jobs in ns whose owner annotation starts with prefix.
func ownedBy(ctx context.Context, admin kubernetes.Interface, ns, prefix string) (int, error) {
	jobs, err := admin.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, err
	}
	var n int
	for _, j := range jobs.Items {
		if strings.HasPrefix(j.Annotations[jobcreate.AnnotationOwner], prefix) {
			n++
		}
	}
	return n, nil
}

// waitActive waits until n Jobs in ns have a pod running.
func waitActive(ctx context.Context, admin kubernetes.Interface, ns string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		jobs, err := admin.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var active int
		for _, j := range jobs.Items {
			if j.Status.Active > 0 && j.Status.Ready != nil && *j.Status.Ready > 0 {
				active++
			}
		}
		if active >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d runs running after %v", active, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// writeFleet writes the fleet table: a row per figure.
func writeFleet(b *bytes.Buffer, rep *Report, command string) {
	f := rep.Fleet
	fmt.Fprintf(b, "Measured %s on %s, in %s, with `%s`.\n\n",
		rep.Started.UTC().Format(time.DateTime+" MST"), rep.Machine, f.Elapsed.Round(time.Second), command)
	b.WriteString("| figure | expected | measured |\n|---|---|---|\n")
	row := func(figure, expected, measured string) {
		fmt.Fprintf(b, "| %s | %s | %s |\n", figure, expected, measured)
	}
	row(fmt.Sprintf("runs running on replica a (of three, each a process; Lease %s, renew deadline %s, retry %s; client %g QPS, burst %d), a SIGKILLed, taken over by b and c",
		secs(f.LeaseDuration), secs(f.RenewDeadline), secs(f.RetryPeriod), f.QPS, f.Burst),
		fmt.Sprintf("%d, about half each", f.Runs), fmt.Sprintf("**%d** (%s)", sumInts(f.TakenOver), countsString(f.TakenOver)))
	row("SIGKILL → a's Lease expires (its renewTime + leaseDurationSeconds)", "≤ the Lease duration", secs(f.KillToExpiry))
	row("Lease expiry → first and last run taken over (claimed, and followed on the survivor's shared streams)", "the first within the view's timer; the last within a few seconds",
		fmt.Sprintf("first **%s**, last **%s**", ms(f.FirstTakeover), ms(f.LastTakeover)))
	row("API requests per run taken over (apiserver_request_total, the kinds a Worker makes, SIGKILL → a second after the last takeover)", "2: the claim's GET and update",
		fmt.Sprintf("**%.3f** (%s)", f.RequestsPerRun(), kindsString(f.APIServerRequests)))
	row("namespaced watches, change on the API server over the takeover (a's close, the survivors' new ones)", "a's 2 gone, none new",
		fmt.Sprintf("jobs %+.0f, pods %+.0f", f.APIServerWatches["jobs"], f.APIServerWatches["pods"]))
	if len(f.Wrong) > 0 {
		fmt.Fprintf(b, "\n%d problems:\n", len(f.Wrong))
		for _, wrong := range f.Wrong[:min(len(f.Wrong), maxWrong)] {
			fmt.Fprintf(b, "\n- %s", wrong)
		}
		b.WriteString("\n")
	}
}

func sumInts(m map[string]int) int {
	var n int
	for _, v := range m {
		n += v
	}
	return n
}

func countsString(m map[string]int) string {
	var b bytes.Buffer
	for _, k := range []string{"a", "b", "c"} {
		if v, ok := m[k]; ok {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %d", k, v)
		}
	}
	return b.String()
}

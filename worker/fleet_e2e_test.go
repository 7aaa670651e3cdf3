package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubeworker/kubeworker/clusterid"
	tc "github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// deliveries records what each replica's Sink received.
type deliveries struct {
	mu   sync.Mutex
	runs map[string][]delivery // by run ID
}

type delivery struct {
	replica string
	res     Result
}

func (d *deliveries) sink(replica string) Sink {
	return SinkFunc(func(_ context.Context, res Result) error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.runs == nil {
			d.runs = map[string][]delivery{}
		}
		d.runs[res.RunID] = append(d.runs[res.RunID], delivery{replica, res})
		return nil
	})
}

func (d *deliveries) of(runID string) []delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]delivery(nil), d.runs[runID]...)
}

// replica starts a fleet replica named identity in ns, whose requests go
// through the fault proxy with identity as user agent.
func replica(t *testing.T, ns, identity string, d *deliveries) *Worker {
	t.Helper()
	cfg := cluster.ProxyConfig()
	cfg.UserAgent = identity
	w := fateWorker(t, jobtest.Client(t, cfg), ns, "fleet", Options{
		RetainUntilRecorded: true,
		Fleet: Fleet{
			Enabled: true, Sink: d.sink(identity), Identity: identity,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
			Resync: time.Second,
		},
	})
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}

// fleetRun is one run's scripted fate and what its Run call returned.
type fleetRun struct {
	id       string
	exitCode int
	pid      chan clusterid.PID
	res      Result
	err      error
	done     chan struct{}
}

// startFleetRuns starts n runs on w, each running for delay then exiting
// with 0 or 3 in turn, and waits until every Job exists.
func startFleetRuns(t *testing.T, w *Worker, prefix string, n int, delay string) []*fleetRun {
	t.Helper()
	var runs []*fleetRun
	for i := range n {
		r := &fleetRun{id: fmt.Sprintf("%s-%d", prefix, i), exitCode: 3 * (i % 2), pid: make(chan clusterid.PID, 1), done: make(chan struct{})}
		runs = append(runs, r)
		go func() {
			defer close(r.done)
			r.res, r.err = w.Run(context.Background(), RunSpec{ID: r.id, Values: fate(map[string]string{
				tc.AnnotationDelay: delay, tc.AnnotationExitCode: fmt.Sprint(r.exitCode),
			}, "backoff_limit", 0, "finished_job_ttl", 300), Started: func(p clusterid.PID) { r.pid <- p }})
		}()
	}
	for _, r := range runs {
		select {
		case <-r.pid:
		case <-r.done:
			t.Fatalf("run %s ended before its Job existed: %v", r.id, r.err)
		case <-time.After(e2eTimeout):
			t.Fatalf("run %s: no Job", r.id)
		}
	}
	return runs
}

// checkDelivered waits until every run is delivered, once, by a replica
// other than gone, with its scripted exit code.
func checkDelivered(t *testing.T, d *deliveries, runs []*fleetRun, gone string) {
	t.Helper()
	for _, r := range runs {
		waitFor(t, "the delivery of "+r.id, func() bool { return len(d.of(r.id)) > 0 })
		got := d.of(r.id)
		for _, dl := range got {
			if dl.replica == gone {
				t.Errorf("run %s delivered by %s, which had left or lost its Lease", r.id, gone)
			}
			want := jobwatch.Succeeded
			if r.exitCode != 0 {
				want = jobwatch.BackoffLimitExceeded
			}
			if dl.res.Outcome != want && !(r.exitCode != 0 && dl.res.Outcome == jobwatch.Failed) || dl.res.ExitCode != r.exitCode {
				t.Errorf("run %s delivered by %s: %v, exit code %d; want exit code %d", r.id, dl.replica, dl.res.Outcome, dl.res.ExitCode, r.exitCode)
			}
		}
		if len(got) != 1 {
			t.Errorf("run %s delivered %d times: %v", r.id, len(got), got)
		}
	}
}

// checkOneJobEach checks that each run has one Job, delivered, owned by a
// replica other than gone.
func checkOneJobEach(t *testing.T, ns string, runs []*fleetRun, gone string) {
	t.Helper()
	var jobs *batchv1.JobList
	// The Job is marked after the Sink returned.
	waitFor(t, "every Job marked delivered", func() bool {
		var err error
		jobs, err = adminClient(t).BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, j := range jobs.Items {
			if j.Annotations[AnnotationDelivered] == "" {
				return false
			}
		}
		return true
	})
	perRun := map[string]int{}
	for _, j := range jobs.Items {
		perRun[j.Labels[manifest.LabelRunID]]++
		owner := j.Annotations[jobcreate.AnnotationOwner]
		if strings.HasPrefix(owner, gone+"/") {
			t.Errorf("Job %s is still owned by %s", j.Name, owner)
		}
		if j.Annotations[AnnotationDelivered] != "true" || j.Spec.TTLSecondsAfterFinished == nil {
			t.Errorf("Job %s: delivered %q, TTL %v; want delivered and its TTL back", j.Name, j.Annotations[AnnotationDelivered], j.Spec.TTLSecondsAfterFinished)
		}
	}
	for _, r := range runs {
		if perRun[r.id] != 1 {
			t.Errorf("run %s has %d Jobs", r.id, perRun[r.id])
		}
	}
}

func TestE2EFleetTakesOverTheRunsOfAReplicaCutOff(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	a := replica(t, ns, "a-"+ns, &d)
	replica(t, ns, "b-"+ns, &d)
	replica(t, ns, "c-"+ns, &d)
	runs := startFleetRuns(t, a, "cut", 8, "8s")

	// Every request of a is refused from now on (as with a partition):
	// it cannot renew its Lease.
	undo := cluster.Proxy().Refuse(func(r *http.Request) bool { return r.UserAgent() == "a-"+ns })
	for _, r := range runs {
		<-r.done
		if !errors.Is(r.err, ErrNotMember) {
			t.Errorf("run %s on the cut-off replica: %v, %v; want ErrNotMember", r.id, r.res.Outcome, r.err)
		}
	}
	checkDelivered(t, &d, runs, "a-"+ns)
	undo()
	checkOneJobEach(t, ns, runs, "a-"+ns)
	// Back, it joins again as a new member and runs again.
	waitFor(t, "a to join again", func() bool { _, _, err := a.fleet.current(); return err == nil })
	res, err := a.Run(t.Context(), RunSpec{ID: "after", Values: fate(nil)})
	if err != nil || res.Outcome != jobwatch.Succeeded {
		t.Errorf("a run on the replica that rejoined: %v, %v", res.Outcome, err)
	}
}

func TestE2EFleetTakesOverAtOnceFromAReplicaThatStops(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	a := replica(t, ns, "a-"+ns, &d)
	replica(t, ns, "b-"+ns, &d)
	runs := startFleetRuns(t, a, "stop", 4, "6s")
	stopped := time.Now()
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		<-r.done
		if !errors.Is(r.err, ErrClosed) {
			t.Errorf("run %s on the stopped replica: %v; want ErrClosed", r.id, r.err)
		}
	}
	// The Lease is given up, so b claims the runs well within the
	// LeaseDuration of a replica that died.
	waitFor(t, "b to claim every run", func() bool {
		jobs, err := adminClient(t).BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, j := range jobs.Items {
			if !strings.HasPrefix(j.Annotations[jobcreate.AnnotationOwner], "b-"+ns+"/") {
				return false
			}
		}
		return true
	})
	t.Logf("b claimed every run %v after a's Close returned", time.Since(stopped))
	checkDelivered(t, &d, runs, "a-"+ns)
	checkOneJobEach(t, ns, runs, "a-"+ns)
}

func TestE2EFleetRunHandedToTwoReplicasIsFollowedOnce(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	a := replica(t, ns, "a-"+ns, &d)
	b := replica(t, ns, "b-"+ns, &d)
	values := fate(map[string]string{tc.AnnotationDelay: "3s"})
	type call struct {
		res Result
		err error
	}
	calls := make(chan call, 2)
	for _, w := range []*Worker{a, b} {
		go func() {
			res, err := w.Run(t.Context(), RunSpec{ID: "twice", Values: values})
			calls <- call{res, err}
		}()
	}
	var owned *OwnedError
	var results int
	for range 2 {
		c := <-calls
		switch {
		case errors.As(c.err, &owned):
			t.Logf("the other Run: %v", c.err)
		case c.err != nil:
			t.Errorf("Run: %v", c.err)
		default:
			results++
			if c.res.Outcome != jobwatch.Succeeded {
				t.Errorf("Run: %v", c.res.Outcome)
			}
		}
	}
	if results != 1 || owned == nil || owned.RunID != "twice" || owned.Owner == "" || owned.PID.Name == "" {
		t.Errorf("%d Results and OwnedError %+v; want one of each, naming the run, its Job and its owner", results, owned)
	}
	if got := d.of("twice"); len(got) != 1 || !strings.HasPrefix(owned.Owner, got[0].replica+"/") {
		t.Errorf("deliveries %v; want one, by the owner %s", got, owned.Owner)
	}
	if n := jobsPerRun(t, ns)["twice"]; n != 1 {
		t.Errorf("%d Jobs for the run", n)
	}
}

func TestE2EFleetDeleteOnCancelDeletesOnlyAJobItStillOwns(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	cfg := cluster.Config()
	w := fateWorker(t, jobtest.Client(t, cfg), ns, "fleet", Options{DeleteOnCancel: true, Fleet: Fleet{
		Enabled: true, Sink: d.sink("a"), Identity: "a-" + ns,
		LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond,
	}})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t)
	for _, stolen := range []bool{false, true} {
		ctx, cancel := context.WithCancel(t.Context())
		pids := make(chan clusterid.PID, 1)
		done := make(chan error, 1)
		id := fmt.Sprintf("doc-%v", stolen)
		go func() {
			_, err := w.Run(ctx, RunSpec{ID: id, Values: fate(map[string]string{tc.AnnotationDelay: "1h"}), Started: func(p clusterid.PID) { pids <- p }})
			done <- err
		}()
		pid := <-pids
		if stolen {
			// Another replica's claim, as far as the Job can tell.
			patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"b/other"}}}`, jobcreate.AnnotationOwner)
			if _, err := admin.BatchV1().Jobs(ns).Patch(t.Context(), pid.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		<-done
		_, err := admin.BatchV1().Jobs(ns).Get(t.Context(), pid.Name, metav1.GetOptions{})
		switch {
		case stolen && err != nil:
			t.Errorf("the Job another replica owns was deleted: %v", err)
		case !stolen && err == nil:
			waitFor(t, "the owned Job's deletion", func() bool {
				j, err := admin.BatchV1().Jobs(ns).Get(t.Context(), pid.Name, metav1.GetOptions{})
				return err != nil || j.DeletionTimestamp != nil
			})
		}
	}
}

func TestE2EFleetDeliversARunWhoseJobIsDeletedWhileNoReplicaFollowsIt(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	a := replica(t, ns, "a-"+ns, &d)
	b := replica(t, ns, "b-"+ns, &d)
	runs := startFleetRuns(t, a, "gone", 2, "1h")
	// b looks every Resync (1 s): a Job made and deleted between two
	// looks, it never sees.
	waitFor(t, "b to see the Jobs", func() bool { return b.fleet.seenUndelivered() == 2 })
	// a is cut off, and while it still holds its Lease (no one takes its
	// runs over yet) both Jobs are deleted from outside: once a's Lease
	// has expired, no Job is left to take over, and b delivers each run
	// as it was last seen: Deleted.
	cutOff(t, "a-"+ns)
	bg := metav1.DeletePropagationBackground
	for _, r := range runs {
		if err := adminClient(t).BatchV1().Jobs(ns).DeleteCollection(t.Context(), metav1.DeleteOptions{PropagationPolicy: &bg},
			metav1.ListOptions{LabelSelector: manifest.LabelRunID + "=" + r.id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range runs {
		<-r.done
		if !errors.Is(r.err, ErrNotMember) {
			t.Errorf("run %s on the cut-off replica: %v, %v; want ErrNotMember", r.id, r.res.Outcome, r.err)
		}
		waitFor(t, "the delivery of "+r.id, func() bool { return len(d.of(r.id)) > 0 })
		for _, dl := range d.of(r.id) {
			if dl.replica != "b-"+ns || dl.res.Outcome != jobwatch.Deleted || dl.res.ExitCode != -1 || dl.res.PID.Name == "" {
				t.Errorf("run %s delivered by %s: %v, exit code %d, PID %v; want Deleted, -1 from b", r.id, dl.replica, dl.res.Outcome, dl.res.ExitCode, dl.res.PID)
			}
		}
	}
}

func TestE2EFleetARunWhoseJobVanishedIsDeliveredByAWitnessNotByAReplicaThatJoinedSince(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	a := replica(t, ns, "a-"+ns, &d)
	b := replica(t, ns, "b-"+ns, &d)
	runs := startFleetRuns(t, a, "witness", 8, "1h")
	waitFor(t, "b to see the Jobs", func() bool { return b.fleet.seenUndelivered() == len(runs) })
	cutOff(t, "a-"+ns)
	bg := metav1.DeletePropagationBackground
	if err := adminClient(t).BatchV1().Jobs(ns).DeleteCollection(t.Context(), metav1.DeleteOptions{PropagationPolicy: &bg}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to miss the Jobs", func() bool { return b.fleet.seenUndelivered() == 0 })
	// c joins after the Jobs vanished: the hash gives it some of the runs
	// (all eight go to b with odds of 1 in 256), but it never saw them.
	replica(t, ns, "c-"+ns, &d)
	for _, r := range runs {
		waitFor(t, "the delivery of "+r.id, func() bool { return len(d.of(r.id)) > 0 })
		for _, dl := range d.of(r.id) {
			if dl.replica != "b-"+ns || dl.res.Outcome != jobwatch.Deleted {
				t.Errorf("run %s delivered by %s as %v; want Deleted, from b, which saw it vanish", r.id, dl.replica, dl.res.Outcome)
			}
		}
	}
}

func TestE2EFleetRunCutOffWhileCreatingEndsWithErrNotMember(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	var d deliveries
	identity := "a-" + ns
	cfg := cluster.ProxyConfig()
	cfg.UserAgent = identity
	creating := make(chan struct{})
	// A create that hangs until the run's context ends, as one held up
	// by an overloaded API server would.
	creator := JobCreatorFunc(func(ctx context.Context, _ *batchv1.Job) (*batchv1.Job, error) {
		close(creating)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	a := fateWorker(t, jobtest.Client(t, cfg), ns, "fleet", Options{
		RetainUntilRecorded: true,
		Parts:               Parts{Creator: creator},
		Fleet: Fleet{
			Enabled: true, Sink: d.sink(identity), Identity: identity,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond, Resync: time.Second,
		},
	})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := a.Run(context.Background(), RunSpec{ID: "creating", Values: fate(nil)})
		errc <- err
	}()
	<-creating
	cutOff(t, identity)
	if err := <-errc; !errors.Is(err, ErrNotMember) {
		t.Errorf("Run cut off while creating: %v; want ErrNotMember, so the caller hands it out again", err)
	}
}

// cutOff refuses every request of the replica whose user agent is
// identity, until the test ends, and drops every open connection, its
// watches among them: it sees nothing more and cannot renew its Lease.
func cutOff(t *testing.T, identity string) {
	t.Helper()
	t.Cleanup(cluster.Proxy().Refuse(func(r *http.Request) bool { return r.UserAgent() == identity }))
	cluster.Proxy().CutAll()
}

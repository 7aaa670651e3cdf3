package fleettest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	ReplicaMain()
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
}

// fate is a run's scripted end.
type fate struct {
	annotations map[string]string
	outcome     string
	exitCode    int
	lines       []string
}

// fateOf scripts run i: a duration of 2 to 8 s, and in turn success, an
// exit code, an OOM kill and an eviction; each logs three lines naming it.
func fateOf(id string, i int) fate {
	f := fate{annotations: map[string]string{clustertest.AnnotationDelay: fmt.Sprintf("%ds", 2+i%7)}}
	switch i % 4 {
	case 0:
		f.outcome = "Succeeded"
	case 1:
		f.annotations[clustertest.AnnotationExitCode] = "3"
		f.outcome, f.exitCode = "Failed", 3
	case 2:
		f.annotations[clustertest.AnnotationExitCode] = "137"
		f.annotations[clustertest.AnnotationReason] = "OOMKilled"
		f.outcome, f.exitCode = "OOMKilled", 137
	case 3:
		f.annotations[clustertest.AnnotationEvict] = "The node was low on resource: memory."
		f.outcome, f.exitCode = "Evicted", 137
	}
	for l := range 3 {
		f.lines = append(f.lines, fmt.Sprintf("%s line %d", id, l))
	}
	f.annotations[clustertest.AnnotationLog] = strings.Join(f.lines, "\n")
	return f
}

func (f fate) values() map[string]any {
	pa := map[string]any{}
	for k, v := range f.annotations {
		pa[k] = v
	}
	return map[string]any{"pod_annotations": pa, "backoff_limit": 0, "finished_job_ttl": 300}
}

// fleetHarness is a fleet of replica processes in one namespace and what
// they said.
type fleetHarness struct {
	t      *testing.T
	ns     string
	events chan Event

	mu        sync.Mutex
	results   map[string][]Event              // by run
	logs      map[string]map[string]time.Time // run → line → its timestamp
	takeovers map[string][]Event
	runErrs   map[string][]Event
	joins     map[string]int               // by replica
	lost      map[string]time.Time         // by replica: when it first lost its Lease
	eventIDs  map[string]map[string]string // run → ID → what happened
	cancels   map[string][]Event
	replicas  []*Replica
	stderr    *strings.Builder
}

func newHarness(t *testing.T) *fleetHarness {
	h := &fleetHarness{t: t, ns: cluster.NewNamespace(t), events: make(chan Event, 1024),
		results: map[string][]Event{}, logs: map[string]map[string]time.Time{}, takeovers: map[string][]Event{},
		runErrs: map[string][]Event{}, joins: map[string]int{}, lost: map[string]time.Time{}, eventIDs: map[string]map[string]string{}, cancels: map[string][]Event{}, stderr: &strings.Builder{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range h.events {
			h.record(e)
		}
	}()
	t.Cleanup(func() {
		for _, r := range h.replicas {
			r.Kill()
		}
		close(h.events)
		<-done
		if t.Failed() {
			h.mu.Lock()
			t.Logf("replicas' stderr:\n%s", h.stderr.String())
			h.mu.Unlock()
		}
	})
	return h
}

func (h *fleetHarness) record(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch e.Kind {
	case "result":
		h.results[e.Run] = append(h.results[e.Run], e)
	case "log":
		if h.logs[e.Run] == nil {
			h.logs[e.Run] = map[string]time.Time{}
		}
		// A line written again (a log read from its start after a
		// takeover) comes with the timestamp it had: that is how a
		// repeat is known.
		if was, ok := h.logs[e.Run][e.Line]; ok && !was.Equal(e.Stamp) {
			h.t.Errorf("run %s: line %q came at %v, then again at %v from %s", e.Run, e.Line, was, e.Stamp, e.Replica)
		}
		if e.Stamp.IsZero() {
			h.t.Errorf("run %s: line %q without its timestamp", e.Run, e.Line)
		}
		h.logs[e.Run][e.Line] = e.Stamp
	case "takeover":
		h.takeovers[e.Run] = append(h.takeovers[e.Run], e)
	case "run-error":
		h.runErrs[e.Run] = append(h.runErrs[e.Run], e)
	case "joined":
		h.joins[e.Replica]++
	case "lost":
		if _, ok := h.lost[e.Replica]; !ok {
			h.lost[e.Replica] = e.At
		}
	case "event":
		if h.eventIDs[e.Run] == nil {
			h.eventIDs[e.Run] = map[string]string{}
		}
		if was, ok := h.eventIDs[e.Run][e.EventID]; ok && was != e.Line {
			h.t.Errorf("run %s: event %s was %q, now %q from %s", e.Run, e.EventID, was, e.Line, e.Replica)
		}
		h.eventIDs[e.Run][e.EventID] = e.Line
	case "cancelled":
		h.cancels[e.Run] = append(h.cancels[e.Run], e)
	}
}

// stderrWriter collects the replicas' stderr.
type stderrWriter struct{ h *fleetHarness }

func (w stderrWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.stderr.Write(p)
}

// start starts a replica named identity.
func (h *fleetHarness) start(identity string) *Replica {
	h.t.Helper()
	cfg := cluster.ProxyConfig()
	ctx, cancel := context.WithTimeout(h.t.Context(), 2*time.Minute)
	defer cancel()
	r, err := Start(ctx, Params{
		Host: cfg.Host, Token: cfg.BearerToken, CA: cfg.CAData, Namespace: h.ns, Identity: identity,
		LeaseDuration: 8 * time.Second, RenewDeadline: 6 * time.Second, RetryPeriod: 500 * time.Millisecond, Resync: 2 * time.Second,
		QPS: 100, Burst: 200,
	}, h.events, stderrWriter{h})
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	h.replicas = append(h.replicas, r)
	h.mu.Unlock()
	return r
}

// waitDelivered waits until every run of fates has a Result, for up to
// timeout.
//
// A run whose Run ended with ErrNotMember (its replica was not a member
// of the fleet then, or lost its Lease on a loaded machine) or ErrClosed
// (its replica stopped) is handed to one of to, as a caller's queue would
// hand it out again: its Job, if it was made, is then adopted or left to
// its owner.
func (h *fleetHarness) waitDelivered(fates map[string]fate, timeout time.Duration, to ...*Replica) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	resent := map[string]int{} // run → run-errors handled
	next := 0
	for {
		h.mu.Lock()
		var missing []string
		var again []string
		for id := range fates {
			if len(h.results[id]) > 0 {
				continue
			}
			missing = append(missing, id)
			errs := h.runErrs[id]
			if last := len(errs) - 1; len(errs) > resent[id] &&
				(strings.Contains(errs[last].Err, worker.ErrNotMember.Error()) || strings.Contains(errs[last].Err, worker.ErrClosed.Error())) {
				again = append(again, id)
			}
			resent[id] = len(errs)
		}
		h.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		for _, id := range again {
			if len(to) == 0 {
				break
			}
			r := to[next%len(to)]
			next++
			h.t.Logf("run %s ended with ErrNotMember: handed to %s again", id, r.Identity)
			if err := r.Send(Run{ID: id, Values: fates[id].values()}); err != nil {
				h.t.Errorf("hand %s again: %v", id, err)
			}
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			h.mu.Lock()
			for _, id := range missing[:min(5, len(missing))] {
				h.t.Logf("run %s: run errors %v; takeovers %v", id, h.runErrs[id], h.takeovers[id])
			}
			h.mu.Unlock()
			h.t.Fatalf("%d runs not delivered, such as %v", len(missing), missing[:min(5, len(missing))])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// joinsOf returns how many times replica joined its fleet.
func (h *fleetHarness) joinsOf(replica string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.joins[replica]
}

// delivered returns how many runs have a Result now.
func (h *fleetHarness) delivered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.results)
}

// check checks every run's Results (each with its fate's outcome and exit
// code; none from a replica in not after it lost its Lease, or at all if
// it never did), its log lines, and that it has one Job.
func (h *fleetHarness) check(fates map[string]fate, not ...string) {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, f := range fates {
		for _, e := range h.results[id] {
			if e.Outcome != f.outcome || e.ExitCode != f.exitCode {
				h.t.Errorf("run %s delivered by %s as %s, exit code %d; want %s, %d", id, e.Replica, e.Outcome, e.ExitCode, f.outcome, f.exitCode)
			}
			if lost, ok := h.lost[e.Replica]; slices.Contains(not, e.Replica) && (!ok || !e.At.Before(lost)) {
				h.t.Errorf("run %s delivered by %s, which was gone (lost its Lease at %v, delivered at %v)", id, e.Replica, lost, e.At)
			}
		}
		for _, l := range f.lines {
			if _, ok := h.logs[id][l]; !ok {
				h.t.Errorf("run %s: log line %q never delivered", id, l)
			}
		}
		if len(h.eventIDs[id]) == 0 {
			h.t.Errorf("run %s: no event delivered", id)
		}
	}
	perRun := jobtest.JobsPerRun(h.t, jobtest.Client(h.t, cluster.Config()), h.ns)
	for id := range fates {
		if perRun[id] != 1 {
			h.t.Errorf("run %s has %d Jobs", id, perRun[id])
		}
	}
}

// waitJobs waits until the namespace holds n Jobs.
func (h *fleetHarness) waitJobs(n int) {
	h.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for len(h.owners()) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d of %d Jobs made", len(h.owners()), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// owners returns the owner annotation of each run's Job.
func (h *fleetHarness) owners() map[string]string {
	out, _ := h.ownersUndelivered()
	return out
}

// ownersUndelivered returns the owner annotation of each run's Job, and
// of those not delivered yet.
func (h *fleetHarness) ownersUndelivered() (all, undelivered map[string]string) {
	h.t.Helper()
	jobs, err := jobtest.Client(h.t, cluster.Config()).BatchV1().Jobs(h.ns).List(h.t.Context(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	all, undelivered = map[string]string{}, map[string]string{}
	for _, j := range jobs.Items {
		id, owner := j.Labels[manifest.LabelRunID], j.Annotations[jobcreate.AnnotationOwner]
		all[id] = owner
		if j.Annotations[worker.AnnotationDelivered] == "" {
			undelivered[id] = owner
		}
	}
	return all, undelivered
}

// waitOwnedBy waits until no undelivered run is owned by replica, and
// returns when that was.
func (h *fleetHarness) waitNotOwnedBy(replica string) time.Time {
	h.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, undelivered := h.ownersUndelivered()
		var left int
		for _, owner := range undelivered {
			if strings.HasPrefix(owner, replica+"/") {
				left++
			}
		}
		if left == 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d undelivered runs still owned by %s", left, replica)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hand sends runs to the replicas in turn and returns their fates.
func (h *fleetHarness) hand(prefix string, n int, replicas ...*Replica) map[string]fate {
	h.t.Helper()
	fates := map[string]fate{}
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		f := fateOf(id, i)
		fates[id] = f
		if err := replicas[i%len(replicas)].Send(Run{ID: id, Values: f.values()}); err != nil {
			h.t.Fatal(err)
		}
	}
	return fates
}

func TestFleetOfThreeSurvivesTheKillOfOne(t *testing.T) {
	h := newHarness(t)
	a, b, c := h.start("a"), h.start("b"), h.start("c")
	fates := h.hand("kill", 300, a, b, c)
	for h.delivered() < 100 {
		time.Sleep(100 * time.Millisecond)
	}
	killed := time.Now()
	a.Kill()
	h.waitDelivered(fates, 5*time.Minute, b, c)
	h.check(fates)
	var last time.Time
	h.mu.Lock()
	taken := 0
	for _, evs := range h.takeovers {
		for _, e := range evs {
			taken++
			if e.At.After(last) {
				last = e.At
			}
		}
	}
	h.mu.Unlock()
	if taken == 0 {
		t.Error("no run was taken over")
	}
	t.Logf("300 runs, %d delivered before the SIGKILL; %d taken over, the last %v after it (the Lease lasts 8 s)", 100, taken, last.Sub(killed))
	// Each of a's runs was delivered by a before the kill, or taken over
	// (a replica that lost its Lease on a loaded machine has its runs
	// taken over too, so there may be more takeovers).
	h.mu.Lock()
	for id := range fates {
		var byA bool
		for _, e := range h.results[id] {
			byA = byA || e.Replica == "a"
		}
		if i := runIndex(id); i%3 == 0 && !byA && len(h.takeovers[id]) == 0 {
			t.Errorf("run %s of the killed replica was delivered without a takeover", id)
		}
	}
	h.mu.Unlock()
	_ = b
	_ = c
}

// runIndex is the number at the end of a run ID.
func runIndex(id string) int {
	var i int
	fmt.Sscanf(id[strings.LastIndexByte(id, '-')+1:], "%d", &i)
	return i
}

func TestFleetRollingRestartLosesNoRun(t *testing.T) {
	h := newHarness(t)
	replicas := []*Replica{h.start("r0"), h.start("r1"), h.start("r2")}
	fates := h.hand("roll", 90, replicas...)
	for i := range replicas {
		time.Sleep(2 * time.Second)
		stopped := time.Now()
		replicas[i].Stop()
		exited := time.Now()
		taken := h.waitNotOwnedBy(fmt.Sprintf("r%d", i))
		t.Logf("r%d: SIGTERM to exit %v, exit to its last run taken over %v", i, exited.Sub(stopped), taken.Sub(exited))
		replicas[i] = h.start(fmt.Sprintf("r%d-new", i))
	}
	h.waitDelivered(fates, 5*time.Minute, replicas...)
	h.check(fates)
	h.mu.Lock()
	for id, evs := range h.runErrs {
		for _, e := range evs {
			// A stopped replica's Runs end with ErrClosed; handed out
			// again, a run whose Job a live replica follows is an
			// OwnedError.
			if !strings.Contains(e.Err, worker.ErrClosed.Error()) && !strings.Contains(e.Err, worker.ErrNotMember.Error()) && !strings.Contains(e.Err, "is followed by replica") {
				t.Errorf("run %s on %s: %s", id, e.Replica, e.Err)
			}
		}
	}
	h.mu.Unlock()
}

func TestFleetPartitionedReplicaIsFencedAndRejoins(t *testing.T) {
	h := newHarness(t)
	a, b := h.start("a"), h.start("b")
	fates := h.hand("part", 20, a)
	h.waitJobs(len(fates))
	// Every request of a is refused for longer than its Lease.
	undo := cluster.Proxy().Refuse(func(r *http.Request) bool { return r.UserAgent() == "a" })
	h.waitDelivered(fates, 3*time.Minute, b)
	undo()
	h.check(fates, "a")
	for id, owner := range h.owners() {
		if !strings.HasPrefix(owner, "b/") {
			t.Errorf("run %s is owned by %q, not b", id, owner)
		}
	}
	// Back, a joins again as a new member and takes work.
	deadline := time.Now().Add(time.Minute)
	for h.joinsOf("a") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("a did not join again")
		}
		time.Sleep(100 * time.Millisecond)
	}
	more := h.hand("after", 4, a)
	h.waitDelivered(more, 2*time.Minute, a, b)
	h.check(more)
	_ = b
}

func TestFleetCancelFromAnotherReplica(t *testing.T) {
	h := newHarness(t)
	a, b := h.start("a"), h.start("b")
	runs := map[string]map[string]any{
		"long":  fateOf("long", 0).values(),
		"stuck": fateOf("stuck", 0).values(),
	}
	runs["long"]["pod_annotations"].(map[string]any)[clustertest.AnnotationDelay] = "1h"
	runs["stuck"]["pod_annotations"].(map[string]any)[clustertest.AnnotationDelay] = "1h"
	runs["stuck"]["pod_annotations"].(map[string]any)[clustertest.AnnotationStuckTerminating] = "true"
	for id, v := range runs {
		if err := a.Send(Run{ID: id, Values: v}); err != nil {
			t.Fatal(err)
		}
	}
	h.waitJobs(2)
	for id := range runs {
		if err := b.Send(Run{ID: id, Cancel: "the caller changed its mind"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h.mu.Lock()
		done := len(h.cancels["long"]) > 0 && len(h.cancels["stuck"]) > 0 && len(h.results["long"]) > 0 && len(h.results["stuck"]) > 0
		h.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			h.mu.Lock()
			t.Fatalf("cancels %v, results %v, errors %v", h.cancels, h.results, h.runErrs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range runs {
		for _, e := range h.results[id] {
			if e.Replica != "a" || e.Outcome != "Cancelled" {
				t.Errorf("run %s: %s from %s; want Cancelled from a, its owner", id, e.Outcome, e.Replica)
			}
		}
	}
	if n := len(h.owners()); n != 0 {
		t.Errorf("%d Jobs left after the cancels", n)
	}
	pods, err := jobtest.Client(t, cluster.Config()).CoreV1().Pods(h.ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods left after the cancels: %d (%v)", len(pods.Items), err)
	}
}

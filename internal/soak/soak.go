// Package soak mixes every fault the local cluster can make over many
// runs with scripted fates, and checks what the workers reported against
// the truth a Checker records with watches of its own.
//
// The workers are processes of the test binary (internal/fleettest): a
// fleet of replicas and a lone Worker whose replacement Attaches by PID
// with the saved log timestamp, plus, once, a burst of runs from a user
// whom API Priority and Fairness starves. Faults come on a schedule drawn
// from a seed: connection cuts, etcd compactions, API server and
// kube-controller-manager restarts (SIGTERM and SIGKILL), the lone
// Worker's SIGKILL, replica kills, stops and partitions. A soak is
// rerun with the same seed for the same fates and fault order (the
// timing is the machine's).
//
// It is the project's alone: TestSoak runs it, short in `make test` and
// long with `make soak`.
package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/fleettest"
	"github.com/kubeworker/kubeworker/worker"
)

// Config sets a soak's size. The zero value is the short soak of `make
// test`.
type Config struct {
	// Seed draws the fates and the faults. Default: from the clock; the
	// Report says which.
	Seed uint64
	// Duration is how long runs are handed out and faults made. Default
	// 90 s.
	Duration time.Duration
	// RunsPerMinute handed out. Default 60.
	RunsPerMinute int
	// MaxRunTime is the longest a pod runs. Default 20 s.
	MaxRunTime time.Duration
	// FaultEvery is the mean gap between faults. Default 6 s.
	FaultEvery time.Duration
	// Burst is how many runs the starved user hands out at once, at a
	// random time in the first half. Default 150; negative: no burst.
	Burst int
	// Replicas in the fleet. Default 3.
	Replicas int
	// Logf reports progress. Default: nothing.
	Logf func(format string, args ...any)
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Duration <= 0 {
		c.Duration = 90 * time.Second
	}
	if c.RunsPerMinute <= 0 {
		c.RunsPerMinute = 60
	}
	if c.MaxRunTime < 2*time.Second {
		c.MaxRunTime = 20 * time.Second
	}
	if c.FaultEvery <= 0 {
		c.FaultEvery = 6 * time.Second
	}
	if c.Burst == 0 {
		c.Burst = 150
	}
	if c.Replicas <= 0 {
		c.Replicas = 3
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// Fleet timings: a replica is presumed gone 8 s after its last renewal.
const (
	leaseDuration = 8 * time.Second
	renewDeadline = 6 * time.Second
)

// runState is what the soak knows of one run.
type runState struct {
	id    string
	fate  Fate
	where string // "fleet", "solo" or "burst"
	ns    string
	// to is the replica it was last handed to.
	to      string
	results []fleettest.Event
	// logs counts each line delivered, by its timestamp.
	logs      map[string]map[time.Time]int
	lastStamp time.Time
	pid       string
	errs      []fleettest.Event
	handled   int // errs acted on
	takeovers int
	resent    int
	deleted   bool
}

// soak is one soak in progress.
type soak struct {
	cfg     Config
	cluster *clustertest.Cluster
	admin   kubernetes.Interface
	checker *Checker
	events  chan fleettest.Event
	fleetNS string
	soloNS  string
	burstNS string
	stderr  *lockedBuilder

	mu          sync.Mutex
	runs        map[string]*runState
	order       []string
	replicas    map[string]*fleettest.Replica // live fleet replicas
	partitioned map[string]bool
	solo        *fleettest.Replica
	burst       *fleettest.Replica
	gen         int
	fenced      map[string][]fence // replica → when it was out of the fleet
	leaked      []string
	closed      map[string]bool
	barriers    map[string]chan struct{}
	faults      map[string]int
	faultBudget int64 // requests the faults may cost (see runBudget)
	attaches    int
	errors      []string // of the soak itself, not of the workers
}

// fence is a time a replica was out of its fleet: from the loss of its
// Lease to its joining again (zero: it never did).
type fence struct{ from, to time.Time }

// fencedAt returns the fence replica was in at t, if any.
func (s *soak) fencedAt(replica string, t time.Time) (fence, bool) {
	for _, f := range s.fenced[replica] {
		if !t.Before(f.from) && (f.to.IsZero() || t.Before(f.to)) {
			return f, true
		}
	}
	return fence{}, false
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Run runs a soak on cluster in three fresh namespaces (the fleet's, the
// lone Worker's and the burst's) and returns its Report; the Report's
// Violations are what differed from the truth. An error is a soak that
// could not be run (a replica that never started, say).
func Run(ctx context.Context, cluster *clustertest.Cluster, namespaces [3]string, cfg Config) (*Report, error) {
	cfg.defaults()
	admin, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		return nil, err
	}
	s := &soak{
		cfg: cfg, cluster: cluster, admin: admin, events: make(chan fleettest.Event, 4096),
		fleetNS: namespaces[0], soloNS: namespaces[1], burstNS: namespaces[2], stderr: &lockedBuilder{},
		runs: map[string]*runState{}, replicas: map[string]*fleettest.Replica{}, partitioned: map[string]bool{},
		fenced: map[string][]fence{}, closed: map[string]bool{}, barriers: map[string]chan struct{}{}, faults: map[string]int{},
	}
	s.checker = NewChecker(admin, namespaces[:]...)
	checkCtx, stopChecker := context.WithCancel(context.WithoutCancel(ctx))
	var checking sync.WaitGroup
	checking.Go(func() { s.checker.Run(checkCtx) })
	defer func() { stopChecker(); checking.Wait() }()
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for e := range s.events {
			s.record(e)
		}
	}()
	var requests requestCounter
	stopCounting := cluster.Proxy().Observe(requests.observe)
	defer stopCounting()
	start := time.Now()
	cfg.Logf("soak: seed %d, %v of runs (%d a minute, up to %v each) and faults (one every %v or so), a burst of %d, %d replicas",
		cfg.Seed, cfg.Duration, cfg.RunsPerMinute, cfg.MaxRunTime, cfg.FaultEvery, cfg.Burst, cfg.Replicas)
	err = s.run(ctx)
	// Every process is stopped by now, its last events read.
	close(s.events)
	<-recorded
	time.Sleep(2 * time.Second) // the checker's watches catch up
	stopChecker()
	checking.Wait()
	r := s.report(time.Since(start), requests.counts())
	if err != nil {
		r.Violations = append(r.Violations, "the soak stopped early: "+err.Error())
	}
	if len(r.Violations) > 0 {
		r.Stderr = s.stderr.String()
	}
	return r, nil
}

func (s *soak) run(ctx context.Context) error {
	defer s.stopAll()
	for range s.cfg.Replicas {
		if _, err := s.startReplica(ctx); err != nil {
			return err
		}
	}
	if err := s.startSolo(ctx); err != nil {
		return err
	}
	phase, endPhase := context.WithTimeout(ctx, s.cfg.Duration)
	defer endPhase()
	var wg sync.WaitGroup
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 1))
	faultRng := rand.New(rand.NewPCG(s.cfg.Seed, 2))
	burstAt, burstSeed := time.Duration(faultRng.Int64N(int64(s.cfg.Duration/2))), rng.Uint64()
	wg.Go(func() { s.handOut(phase, rng) })
	wg.Go(func() { s.makeFaults(phase, faultRng) })
	var burstErr error
	if s.cfg.Burst > 0 {
		wg.Go(func() { burstErr = s.runBurst(ctx, burstAt, burstSeed) })
	}
	tend, stopTending := context.WithCancel(ctx)
	var tending sync.WaitGroup
	tending.Go(func() { s.tend(tend) })
	wg.Wait()
	drain := s.cfg.MaxRunTime + 3*time.Minute
	s.cfg.Logf("soak: %d runs handed out, %d faults made; waiting up to %v for the last Results", len(s.order), s.faultCount(), drain)
	s.waitDelivered(ctx, drain)
	stopTending()
	tending.Wait()
	return burstErr
}

// handOut hands a run out at the configured rate until ctx ends.
func (s *soak) handOut(ctx context.Context, rng *rand.Rand) {
	every := time.Minute / time.Duration(s.cfg.RunsPerMinute)
	var kinds []string
	for i := 0; ; i++ {
		if len(kinds) == 0 {
			kinds = append([]string(nil), fateKinds...)
			rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		}
		kind := kinds[0]
		kinds = kinds[1:]
		id := fmt.Sprintf("soak-%04d", i)
		rs := &runState{id: id, fate: newFate(rng, id, kind, s.cfg.MaxRunTime), logs: map[string]map[time.Time]int{}}
		// A third of the runs go to the lone Worker.
		if rng.IntN(3) == 0 {
			rs.where, rs.ns = "solo", s.soloNS
		} else {
			rs.where, rs.ns = "fleet", s.fleetNS
		}
		s.mu.Lock()
		s.runs[id] = rs
		s.order = append(s.order, id)
		s.mu.Unlock()
		s.hand(rs, rng)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// hand sends rs to a worker: the lone one, or a random healthy replica.
func (s *soak) hand(rs *runState, rng *rand.Rand) {
	s.mu.Lock()
	var to *fleettest.Replica
	if rs.where == "solo" {
		to = s.solo
	} else {
		var healthy []*fleettest.Replica
		for id, r := range s.replicas {
			if !s.partitioned[id] {
				healthy = append(healthy, r)
			}
		}
		if len(healthy) > 0 {
			// Map order is random; rng keeps the choice from the seed
			// as far as the set of replicas allows.
			to = healthy[rng.IntN(len(healthy))]
		}
	}
	if to == nil {
		s.mu.Unlock()
		return // tend hands it out once a worker is back
	}
	rs.to = to.Identity
	s.mu.Unlock()
	s.send(to, fleettest.Run{ID: rs.id, Values: rs.fate.Values()})
}

func (s *soak) send(to *fleettest.Replica, run fleettest.Run) {
	// A replica killed a moment ago refuses; the run is handed out again
	// by tend.
	_ = to.Send(run)
}

// record takes in one event of a worker.
func (s *soak) record(e fleettest.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Kind == "barrier" {
		close(s.barriers[e.Run])
		delete(s.barriers, e.Run)
		return
	}
	switch e.Kind {
	case "lost":
		// A Lease lost to a loaded machine is a fault too: its runs are
		// taken over.
		s.fenced[e.Replica] = append(s.fenced[e.Replica], fence{from: e.At})
		s.chargeFault()
		return
	case "joined":
		if f := s.fenced[e.Replica]; len(f) > 0 && f[len(f)-1].to.IsZero() {
			f[len(f)-1].to = e.At
		}
		return
	case "leaked":
		s.leaked = append(s.leaked, fmt.Sprintf("%s: %s", e.Replica, e.Err))
		return
	case "closed":
		s.closed[e.Replica] = true
		return
	}
	rs := s.runs[e.Run]
	if rs == nil {
		return
	}
	switch e.Kind {
	case "result":
		rs.results = append(rs.results, e)
	case "log":
		if rs.logs[e.Line] == nil {
			rs.logs[e.Line] = map[time.Time]int{}
		}
		rs.logs[e.Line][e.Stamp]++
		if e.Stamp.After(rs.lastStamp) {
			rs.lastStamp = e.Stamp
		}
	case "started":
		rs.pid = e.PID
	case "run-error":
		rs.errs = append(rs.errs, e)
	case "takeover":
		rs.takeovers++
	}
}

// barrier returns once every event sent before it has been recorded.
func (s *soak) barrier() {
	s.mu.Lock()
	s.gen++
	id := fmt.Sprint("b", s.gen)
	done := make(chan struct{})
	s.barriers[id] = done
	s.mu.Unlock()
	s.events <- fleettest.Event{Kind: "barrier", Run: id}
	<-done
}

// tend hands runs out again as a caller's queue would: a fleet run whose
// Job may not have been made (no Started yet) and whose Run ended with
// ErrNotMember or ErrClosed, or whose replica is gone, goes to a healthy
// replica; the lone Worker's runs are handed to its replacement by
// killSolo. A Run error of any other kind is kept for the
// report. It also deletes the Jobs of the runs scripted to be deleted
// from outside, once their pod runs.
func (s *soak) tend(ctx context.Context) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, 3))
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
		var again []*runState
		toDelete := map[*runState]string{} // → its PID
		s.mu.Lock()
		for _, id := range s.order {
			rs := s.runs[id]
			if len(rs.results) > 0 {
				continue
			}
			if rs.fate.Delete && rs.pid != "" && !rs.deleted {
				toDelete[rs] = rs.pid
			}
			if rs.where != "fleet" {
				continue
			}
			// A run whose Job was made (Started said its PID) is the
			// fleet's to follow to its end; one whose Job may not have
			// been made is handed out again when its replica is gone or
			// its Run ended with ErrNotMember or ErrClosed.
			_, live := s.replicas[rs.to]
			resend := !live
			for _, e := range rs.errs[rs.handled:] {
				if strings.Contains(e.Err, worker.ErrNotMember.Error()) || strings.Contains(e.Err, worker.ErrClosed.Error()) {
					resend = true
				}
			}
			rs.handled = len(rs.errs)
			resend = resend && rs.pid == ""
			if resend {
				again = append(again, rs)
			}
		}
		s.mu.Unlock()
		for _, rs := range again {
			s.mu.Lock()
			rs.resent++
			s.mu.Unlock()
			s.hand(rs, rng)
		}
		for rs, pid := range toDelete {
			s.deleteIfRunning(ctx, rs, pid)
		}
	}
}

// waitDelivered waits until every run has a Result, or for timeout.
func (s *soak) waitDelivered(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s.mu.Lock()
		missing := 0
		for _, rs := range s.runs {
			if len(rs.results) == 0 {
				missing++
			}
		}
		s.mu.Unlock()
		if missing == 0 {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (s *soak) faultCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.faults {
		n += c
	}
	return n
}

// stopAll stops every worker process with SIGTERM, so each closes its
// Worker and says whether goroutines outlived it.
func (s *soak) stopAll() {
	s.mu.Lock()
	var all []*fleettest.Replica
	for _, r := range s.replicas {
		all = append(all, r)
	}
	if s.solo != nil {
		all = append(all, s.solo)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range all {
		wg.Go(r.Stop)
	}
	wg.Wait()
	s.barrier()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range all {
		if !s.closed[r.Identity] {
			s.errors = append(s.errors, fmt.Sprintf("worker %s did not close cleanly (see its stderr)", r.Identity))
		}
	}
}

// params are a worker process's, reaching the API server through the
// fault proxy.
func (s *soak) params(identity, ns string) fleettest.Params {
	cfg := s.cluster.ProxyConfig()
	return fleettest.Params{
		Host: cfg.Host, Token: cfg.BearerToken, CA: cfg.CAData, Namespace: ns, Identity: identity,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: 500 * time.Millisecond, Resync: 2 * time.Second,
		QPS: 100, Burst: 200,
	}
}

func (s *soak) startReplica(ctx context.Context) (*fleettest.Replica, error) {
	s.mu.Lock()
	s.gen++
	id := fmt.Sprintf("r%d", s.gen)
	s.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := fleettest.Start(sctx, s.params(id, s.fleetNS), s.events, s.stderr)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.replicas[id] = r
	s.mu.Unlock()
	return r, nil
}

func (s *soak) startSolo(ctx context.Context) error {
	s.mu.Lock()
	s.gen++
	id := fmt.Sprintf("solo%d", s.gen)
	s.mu.Unlock()
	p := s.params(id, s.soloNS)
	p.Solo = true
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r, err := fleettest.Start(sctx, p, s.events, s.stderr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.solo = r
	s.mu.Unlock()
	return nil
}

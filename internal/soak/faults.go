package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/fleettest"
	"github.com/kubeworker/kubeworker/internal/scaletest"
)

// faultKinds are the faults a soak makes, each as often as the others:
// the order is shuffled anew from the seed each time all have been made.
var faultKinds = []string{
	"cut-connections", "compact-etcd", "apiserver-sigterm", "apiserver-sigkill",
	"controller-manager-sigterm", "controller-manager-sigkill",
	"solo-sigkill", "replica-sigkill", "replica-sigterm", "replica-partition",
}

// makeFaults makes a fault every FaultEvery or so until ctx ends. Each
// runs on its own, so a slow one (an API server restart, a partition)
// overlaps the next.
func (s *soak) makeFaults(ctx context.Context, rng *rand.Rand) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var kinds []string
	for {
		gap := time.Duration(float64(s.cfg.FaultEvery) * (0.5 + rng.Float64()))
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
		if len(kinds) == 0 {
			kinds = append([]string(nil), faultKinds...)
			rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
		}
		kind := kinds[0]
		kinds = kinds[1:]
		pick := rng.Uint64()
		wg.Go(func() {
			if err := s.fault(context.WithoutCancel(ctx), kind, pick); err != nil {
				s.mu.Lock()
				s.errors = append(s.errors, fmt.Sprintf("fault %s: %v", kind, err))
				s.mu.Unlock()
				return
			}
		})
	}
}

// fault makes one fault; pick chooses among replicas.
func (s *soak) fault(ctx context.Context, kind string, pick uint64) error {
	s.cfg.Logf("soak: %s", kind)
	count := func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.faults[kind]++
		s.chargeFault()
	}
	switch kind {
	case "cut-connections":
		s.cluster.Proxy().CutAll()
	case "compact-etcd":
		if _, err := s.cluster.CompactEtcd(ctx); err != nil {
			return err
		}
	case "apiserver-sigterm", "apiserver-sigkill":
		if err := s.cluster.RestartAPIServer(ctx, signalOf(kind)); err != nil {
			return err
		}
	case "controller-manager-sigterm", "controller-manager-sigkill":
		if err := s.cluster.RestartControllerManager(ctx, signalOf(kind)); err != nil {
			return err
		}
	case "solo-sigkill":
		count()
		return s.killSolo(ctx)
	case "replica-sigkill", "replica-sigterm", "replica-partition":
		// With too few healthy replicas to spare one (another is cut off
		// or being replaced), wait for one.
		r := s.pickReplica(pick)
		for deadline := time.Now().Add(time.Minute); r == nil; r = s.pickReplica(pick) {
			if time.Now().After(deadline) {
				return fmt.Errorf("no replica to spare for a minute")
			}
			time.Sleep(time.Second)
		}
		count()
		return s.replicaFault(ctx, kind, r, time.Duration(pick%5000)*time.Millisecond)
	}
	count()
	return nil
}

// chargeFault adds what a fault may cost to the request budget (see
// runBudget). Call it with s.mu held.
func (s *soak) chargeFault() {
	inFlight := 0
	for _, rs := range s.runs {
		if rs.where != "burst" && len(rs.results) == 0 {
			inFlight++
		}
	}
	s.faultBudget += int64(faultBudgetPerRun*inFlight + faultBudgetPerWorker*(len(s.replicas)+1))
}

func signalOf(kind string) syscall.Signal {
	if kind[len(kind)-len("sigkill"):] == "sigkill" {
		return syscall.SIGKILL
	}
	return syscall.SIGTERM
}

// pickReplica picks a healthy replica, leaving at least one other
// healthy; nil if there is none to spare. It marks it partitioned, so no
// other fault picks it.
func (s *soak) pickReplica(pick uint64) *fleettest.Replica {
	s.mu.Lock()
	defer s.mu.Unlock()
	var healthy []*fleettest.Replica
	for _, id := range sortedKeys(s.replicas) {
		if !s.partitioned[id] {
			healthy = append(healthy, s.replicas[id])
		}
	}
	if len(healthy) < 2 {
		return nil
	}
	r := healthy[pick%uint64(len(healthy))]
	s.partitioned[r.Identity] = true
	return r
}

// replicaFault kills, stops or cuts off r; a killed or stopped replica
// is replaced by a new one after wait.
func (s *soak) replicaFault(ctx context.Context, kind string, r *fleettest.Replica, wait time.Duration) error {
	switch kind {
	case "replica-partition":
		// Every request of r is refused for longer than its Lease: the
		// others take its runs over; it is fenced, and joins again.
		undo := s.cluster.Proxy().Refuse(func(req *http.Request) bool { return req.UserAgent() == r.Identity })
		time.Sleep(leaseDuration + 2*time.Second + wait)
		undo()
		s.mu.Lock()
		delete(s.partitioned, r.Identity)
		s.mu.Unlock()
		return nil
	case "replica-sigkill":
		r.Kill()
	default:
		r.Stop()
	}
	s.mu.Lock()
	delete(s.replicas, r.Identity)
	delete(s.partitioned, r.Identity)
	s.mu.Unlock()
	time.Sleep(wait)
	_, err := s.startReplica(ctx)
	return err
}

// killSolo SIGKILLs the lone Worker and starts another, which Attaches
// to each run whose PID was said, with the log from after the last line
// saved, and Runs the others again (a Run adopts a Job it finds).
func (s *soak) killSolo(ctx context.Context) error {
	s.mu.Lock()
	old := s.solo
	s.solo = nil
	s.mu.Unlock()
	old.Kill()
	s.barrier() // every line the old one wrote is saved
	if err := s.startSolo(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	var runs []fleettest.Run
	for _, id := range s.order {
		rs := s.runs[id]
		if rs.where != "solo" || len(rs.results) > 0 {
			continue
		}
		run := fleettest.Run{ID: rs.id, Values: rs.fate.Values()}
		if rs.pid != "" {
			run.Attach, run.Since = rs.pid, rs.lastStamp
			s.attaches++
		}
		rs.to = s.solo.Identity
		runs = append(runs, run)
	}
	to := s.solo
	s.mu.Unlock()
	for _, run := range runs {
		s.send(to, run)
	}
	return nil
}

// deleteIfRunning deletes rs's Job from outside once a pod of it runs.
func (s *soak) deleteIfRunning(ctx context.Context, rs *runState, pidText string) {
	pid, err := clusterid.ParsePID(pidText)
	if err != nil {
		return
	}
	var job JobTruth
	for _, j := range s.checker.Jobs()[rs.id] {
		if j.Name == pid.Name && j.Namespace == pid.Namespace {
			job = j
		}
	}
	ran := false
	for _, p := range s.checker.Pods()[job.UID] {
		ran = ran || p.Ran
	}
	if job.UID == "" || !ran {
		return
	}
	bg := metav1.DeletePropagationBackground
	err = s.admin.BatchV1().Jobs(pid.Namespace).Delete(ctx, pid.Name, metav1.DeleteOptions{PropagationPolicy: &bg})
	if err != nil {
		return // tried again on the next round
	}
	s.mu.Lock()
	rs.deleted = true
	s.faults["job-deleted-from-outside"]++
	s.mu.Unlock()
}

// burstUser is the user whose requests API Priority and Fairness starves
// during the burst.
const burstUser = "kubeworker-soak-burst"

// runBurst waits for at, then has a lone Worker of the starved user hand
// out Burst runs at once, and returns once they have all been delivered
// or have run out of time.
func (s *soak) runBurst(ctx context.Context, at time.Duration, seed uint64) error {
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(at):
	}
	undo, seats, err := scaletest.Starve(ctx, s.admin, burstUser, 8, 10)
	if err != nil {
		return err
	}
	defer undo(context.WithoutCancel(ctx))
	// Through the fault proxy, as the starved user, like every worker
	// (its cuts and refusals included); its requests are not counted in
	// the budget.
	p := s.params("burst", s.burstNS)
	p.Impersonate, p.Name, p.Solo, p.QPS, p.Burst = burstUser, "burst", true, 5000, 10000
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	r, err := fleettest.Start(sctx, p, s.events, s.stderr)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		r.Stop()
		s.barrier()
		s.mu.Lock()
		if !s.closed[r.Identity] {
			s.errors = append(s.errors, "the burst's worker did not close cleanly")
		}
		s.mu.Unlock()
	}()
	s.cfg.Logf("soak: burst of %d runs, the user held to %.0f seats", s.cfg.Burst, seats)
	s.mu.Lock()
	s.faults["overload-burst"]++
	s.mu.Unlock()
	rng := rand.New(rand.NewPCG(seed, 4))
	var ids []string
	for i := range s.cfg.Burst {
		id := fmt.Sprintf("burst-%04d", i)
		rs := &runState{id: id, fate: burstFate(rng), where: "burst", ns: s.burstNS, to: "burst", logs: map[string]map[time.Time]int{}}
		s.mu.Lock()
		s.runs[id] = rs
		s.order = append(s.order, id)
		s.mu.Unlock()
		ids = append(ids, id)
		if err := r.Send(fleettest.Run{ID: id, Values: rs.fate.Values()}); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(20 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s.mu.Lock()
		left := 0
		for _, id := range ids {
			if len(s.runs[id].results) == 0 && len(s.runs[id].errs) == 0 {
				left++
			}
		}
		s.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	return nil
}

// burstFate is a burst run's: seven in ten succeed, two exit 3, one is
// OOM-killed, within 2 to 20 s; its log is not followed.
func burstFate(rng *rand.Rand) Fate {
	f := Fate{Kind: "burst", Pods: 1, annotations: map[string]string{}, values: map[string]any{
		"backoff_limit": 0, "pod_watch_timeout_seconds": 900, "stream_output": false,
	}}
	f.annotations[clustertest.AnnotationDelay] = "2s"
	f.annotations[clustertest.AnnotationJitter] = "20s"
	switch n := rng.IntN(10); {
	case n < 7:
		f.Outcome = "Succeeded"
	case n < 9:
		f.annotations[clustertest.AnnotationExitCode] = "3"
		f.Outcome, f.ExitCode = "Failed", 3
	default:
		f.annotations[clustertest.AnnotationExitCode] = "137"
		f.annotations[clustertest.AnnotationReason] = "OOMKilled"
		f.Outcome, f.ExitCode = "OOMKilled", 137
	}
	return f
}

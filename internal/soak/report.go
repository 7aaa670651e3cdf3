package soak

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// The request budget. BENCHMARKS.md allows 3 API requests per run
// (runBudget), measured without following logs or keeping Jobs until
// recorded; a soak's runs also open a log stream per pod and patch their
// Job once when delivered. A fault that drops connections or replaces a
// worker may cost each run in flight a reconnect, a re-read and a claim
// or Attach (faultBudgetPerRun: most runs in flight need none of them,
// so one a run is plenty), and each worker process its watches,
// lists and cluster read (faultBudgetPerWorker). The soak counts the
// workers' requests at the fault proxy; the fleet's Lease renewals are
// counted apart, as they are per replica and second, not per run.
const (
	runBudget            = 3
	faultBudgetPerRun    = 1
	faultBudgetPerWorker = 5
)

// Report is what a soak did and found.
type Report struct {
	Seed    uint64
	Config  Config
	Elapsed time.Duration
	// Runs handed out to the fleet and the lone Worker; BurstRuns by the
	// starved user.
	Runs, BurstRuns int
	// Fates counts the runs by scripted fate; Outcomes the Results by
	// "outcome exit-code".
	Fates, Outcomes map[string]int
	// Faults counts the faults made, by kind.
	Faults map[string]int
	// Results delivered (a run taken over may be delivered twice, with
	// the same outcome), runs taken over, handed out again, and Attached
	// by a new lone Worker.
	Results, Takeovers, Resent, Attaches int
	// LogLines delivered.
	LogLines int
	// Requests the workers sent through the fault proxy for their runs,
	// by "verb resource" in RequestKinds; LeaseRequests their
	// Lease renewals and watches.
	Requests, LeaseRequests int64
	RequestKinds            map[string]int64
	RequestsPerRun          float64
	// Budget is how many requests the runs may take (see runBudget).
	Budget int64
	// CheckerLists counts the checker's lists (two at the start, one more
	// after each 410 Gone).
	CheckerLists int
	// Violations say what differed from the truth, each naming the run;
	// none is a pass.
	Violations []string
	// Stderr is the workers' stderr, kept when something was violated.
	Stderr string
}

// report compares what the workers said with the checker's truth.
func (s *soak) report(elapsed time.Duration, counts requestCounts) *Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Report{Seed: s.cfg.Seed, Config: s.cfg, Elapsed: elapsed, Fates: map[string]int{}, Outcomes: map[string]int{},
		Faults: maps.Clone(s.faults), Attaches: s.attaches, RequestKinds: map[string]int64{}}
	jobs, pods := s.checker.Jobs(), s.checker.Pods()
	r.CheckerLists = s.checker.lists()
	bad := func(rs *runState, format string, args ...any) {
		r.Violations = append(r.Violations, fmt.Sprintf("run %s (%s, fate %s, handed to %s; seed %d): %s",
			rs.id, rs.where, rs.fate.Kind, rs.to, s.cfg.Seed, fmt.Sprintf(format, args...)))
	}
	for _, id := range s.order {
		rs := s.runs[id]
		if rs.where == "burst" {
			r.BurstRuns++
		} else {
			r.Runs++
		}
		r.Fates[rs.fate.Kind]++
		r.Takeovers += rs.takeovers
		r.Resent += rs.resent
		r.Results += len(rs.results)
		for _, m := range rs.logs {
			for _, n := range m {
				r.LogLines += n
			}
		}
		s.checkRun(rs, jobs, pods, bad, r)
	}
	for _, l := range s.leaked {
		r.Violations = append(r.Violations, "goroutines outlived Close in "+l)
	}
	r.Violations = append(r.Violations, s.errors...)
	for k, n := range counts {
		if k.agent == "burst" {
			continue // overload has a figure of its own (BENCHMARKS.md)
		}
		if k.resource == "leases" {
			r.LeaseRequests += n
			continue
		}
		r.Requests += n
		r.RequestKinds[k.verb+" "+k.resource] += n
	}
	if r.Runs > 0 {
		r.RequestsPerRun = float64(r.Requests) / float64(r.Runs)
	}
	r.Budget = s.faultBudget
	for _, id := range s.order {
		if rs := s.runs[id]; rs.where != "burst" {
			r.Budget += runBudget + 1 + int64(rs.fate.Pods)
		}
	}
	if r.Requests > r.Budget {
		r.Violations = append(r.Violations, fmt.Sprintf("the workers sent %d API requests for %d runs (%.2f a run), over the budget of %d (seed %d)",
			r.Requests, r.Runs, r.RequestsPerRun, r.Budget, s.cfg.Seed))
	}
	return r
}

// checkRun checks one run's Results, Job and log against the truth.
func (s *soak) checkRun(rs *runState, jobs map[string][]JobTruth, pods map[types.UID][]PodTruth, bad func(*runState, string, ...any), r *Report) {
	want := fmt.Sprintf("%s %d", rs.fate.Outcome, rs.fate.ExitCode)
	if len(rs.results) == 0 {
		bad(rs, "never delivered (Run errors: %v; takeovers %d)", errTexts(rs), rs.takeovers)
	}
	seen := map[string]bool{}
	for _, e := range rs.results {
		got := fmt.Sprintf("%s %d", e.Outcome, e.ExitCode)
		r.Outcomes[got]++
		if got != want {
			bad(rs, "delivered by %s as %s, want %s", e.Replica, got, want)
		}
		seen[got] = true
		if f, ok := s.fencedAt(e.Replica, e.At); ok {
			bad(rs, "delivered by %s at %v, after it lost its Lease at %v and before it joined again (%v)", e.Replica, e.At, f.from, f.to)
		}
	}
	if len(seen) > 1 {
		bad(rs, "delivered with %d different outcomes: %v", len(seen), slices.Sorted(maps.Keys(seen)))
	}
	for _, e := range rs.errs {
		if !expectedRunError(rs, e.Err) {
			bad(rs, "Run on %s failed: %s", e.Replica, e.Err)
		}
	}
	job, err := jobOf(jobs, rs.ns, rs.id)
	if err != nil {
		bad(rs, "%v", err)
		return
	}
	// The truth itself: the cluster did what the fate scripted.
	var ran []PodTruth
	for _, p := range pods[job.UID] {
		if p.Ran {
			ran = append(ran, p)
		}
	}
	// A Job controller restarted at the wrong moment may start an extra
	// pod (and stop it once another has ended the Job): more pods may run
	// than scripted, never fewer.
	if !rs.fate.Delete {
		if len(ran) < rs.fate.Pods {
			bad(rs, "%d of its pods ran, the fate scripts %d", len(ran), rs.fate.Pods)
		}
		if codes := exitCodes(ran); rs.fate.Pods > 0 && !slices.Contains(codes, int32(rs.fate.ExitCode)) {
			bad(rs, "its pods exited %v, the fate scripts %d", codes, rs.fate.ExitCode)
		}
	} else if !job.Deleted || job.Finished {
		bad(rs, "its Job was not deleted while it ran (deleted %v, finished first %v)", job.Deleted, job.Finished)
	}
	// Each scripted line once per pod that ran: a line delivered again
	// must come with the timestamp it had (a fleet's takeover reads the
	// log from its start); the lone Worker's Attach, given the last
	// line's timestamp, repeats nothing.
	lines := map[string]bool{}
	for _, l := range rs.fate.Lines {
		lines[l] = true
	}
	for line, stamps := range rs.logs {
		if !lines[line] {
			bad(rs, "log line %q was never written", clip(line))
			continue
		}
		for stamp, n := range stamps {
			if n > 1 && rs.where != "fleet" {
				bad(rs, "log line %q (%v) delivered %d times", clip(line), stamp, n)
			}
		}
		if len(stamps) > len(ran) {
			bad(rs, "log line %q delivered with %d timestamps, from %d pods", clip(line), len(stamps), len(ran))
		}
	}
	if rs.fate.Delete || rs.where == "burst" {
		return // a deleted Job's pod may go before its log is read
	}
	for _, l := range rs.fate.Lines {
		if got := len(rs.logs[l]); got < rs.fate.Pods {
			bad(rs, "log line %q delivered from %d of its %d pods", clip(l), got, rs.fate.Pods)
			break
		}
	}
}

// expectedRunError says whether a Run error is one a caller's queue
// handles by handing the run out again: the replica left the fleet or
// stopped, or another live replica follows the run.
func expectedRunError(rs *runState, err string) bool {
	if rs.where != "fleet" {
		return false
	}
	for _, ok := range []string{"not a member of", "closed", "is followed by replica"} {
		if strings.Contains(err, ok) {
			return true
		}
	}
	return false
}

// exitCodes are the run container's exit codes of the pods that ended,
// in the order the checker first saw the pods.
func exitCodes(pods []PodTruth) []int32 {
	slices.SortFunc(pods, func(a, b PodTruth) int { return a.Seq - b.Seq })
	var out []int32
	for _, p := range pods {
		if p.ExitCode != -1 {
			out = append(out, p.ExitCode)
		}
	}
	return out
}

func errTexts(rs *runState) []string {
	var out []string
	for _, e := range rs.errs {
		out = append(out, e.Replica+": "+e.Err)
	}
	return out
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Print writes the report as a short text.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "soak: seed %d, %v: %d runs (+%d in the burst), %d Results, %d log lines, %d taken over, %d handed out again, %d attached\n",
		r.Seed, r.Elapsed.Round(time.Second), r.Runs, r.BurstRuns, r.Results, r.LogLines, r.Takeovers, r.Resent, r.Attaches)
	fmt.Fprintf(w, "soak: fates %s\n", counts(r.Fates))
	fmt.Fprintf(w, "soak: outcomes %s\n", counts(r.Outcomes))
	fmt.Fprintf(w, "soak: faults %s\n", counts(r.Faults))
	fmt.Fprintf(w, "soak: %d requests for runs (%.2f a run; budget %d), %d for Leases; the checker listed %d times\n",
		r.Requests, r.RequestsPerRun, r.Budget, r.LeaseRequests, r.CheckerLists)
	fmt.Fprintf(w, "soak: requests by kind: %s\n", counts(r.RequestKinds))
	fmt.Fprintf(w, "soak: %d violations\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  violation: %s\n", v)
	}
}

// counts formats a count map, largest first.
func counts[K cmp.Ordered, N int | int64](m map[K]N) string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b K) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%v ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

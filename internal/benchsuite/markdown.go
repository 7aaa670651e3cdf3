package benchsuite

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// The suite's table sits between these markers in BENCHMARKS.md; text
// around them is kept when the table is written again.
const (
	beginMarker = "<!-- benchsuite:begin -->"
	endMarker   = "<!-- benchsuite:end -->"
)

// leastPlanePerJob is the least control-plane CPU per Job of the raw loop
// among the submission measurements, or 0.
func leastPlanePerJob(subs []Submission) time.Duration {
	var least time.Duration
	for _, s := range subs {
		if p := s.Plane[rawLoop]; p > 0 && (least == 0 || p < least) {
			least = p
		}
	}
	return least
}

// WriteTable writes rep as a Markdown table with the goal of each figure
// and the command that reproduces it.
func WriteTable(w io.Writer, rep *Report, command string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Measured %s on %s, in %s, with `%s`.\n\n", rep.Started.UTC().Format(time.DateTime+" MST"), rep.Machine, rep.Took.Round(time.Second), command)
	b.WriteString("| figure | goal | measured |\n|---|---|---|\n")
	for _, s := range rep.Submit {
		where := "client and control plane sharing the CPUs"
		if s.Isolated {
			where = "control plane on CPU 0, client on the others"
		}
		fmt.Fprintf(&b, "| submission of %d Jobs at %g QPS (burst %d), %s, Worker throughput over a raw client-go Create loop | ≥ 0.9× | **%.2f×** (median of %d rounds; raw loop %s, Worker %s",
			s.Jobs, s.QPS, s.Burst, where, s.Ratio, s.Rounds, s.Raw.Round(time.Millisecond), s.Worker.Round(time.Millisecond))
		if s.Isolated {
			fmt.Fprintf(&b, "; a raw loop that also watches its Jobs with a client-go informer: %.2f×, %s", s.WatchedRatio, s.Watched.Round(time.Millisecond))
		}
		fmt.Fprintf(&b, "; Worker.Start %s, before the clock; control plane busy %.2f CPUs during the raw loop; CPU per Job, client / control plane: raw %s / %s, Worker %s / %s",
			s.Start.Round(time.Millisecond), s.ControlPlaneCores, us(s.Client[rawLoop]), us(s.Plane[rawLoop]), us(s.Client[workerRuns]), us(s.Plane[workerRuns]))
		if s.Isolated {
			fmt.Fprintf(&b, ", watched raw %s / %s", us(s.Client[watchedLoop]), us(s.Plane[watchedLoop]))
		}
		b.WriteString(") |\n")
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(&b, "| watch connections open, %d concurrent runs | O(namespaces) | **%d** (API server: +%.0f namespaced watches) |\n", s.Runs, s.WatchesOpen, s.APIServerWatches)
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(&b, "| API requests per run, %d runs (API server's apiserver_request_total) | ≤ 3 | **%.3f** (client's own count: %.3f%s) |\n", s.Runs, s.APIServerRequestsPerRun, s.ClientRequestsPerRun, otherKinds(s))
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(&b, "| LIST requests of Jobs, %d runs (API server's namespaced LISTs) | O(1), never per run | **%.0f** (the client's own: %d) |\n", s.Runs, s.APIServerJobLists, s.ClientRequestKinds["list jobs 200"])
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(&b, "| completion detection, pod's terminal status → Run returns, %d runs | p99 ≤ 250 ms | p50 **%s**, p99 **%s** (%d of %d decided by the pod); a raw watch of the Job's condition: p50 %s, p99 %s |\n",
			s.Runs, ms(s.DetectP50), ms(s.DetectP99), s.FromPod, s.Runs, ms(s.JobControllerP50), ms(s.JobControllerP99))
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(&b, "| Worker heap per tracked run, %d runs | ≤ 16 KiB | **%.1f KiB** (+ %.1f KiB goroutine stack) |\n", s.Runs, s.HeapPerRun/1024, s.StackPerRun/1024)
	}
	p := rep.Prepare
	if plane := leastPlanePerJob(rep.Submit); plane > 0 {
		fmt.Fprintf(&b, "| render+prepare of the default template vs the control plane's CPU per Job (the least of the submission rows, raw loop) | ≤ 5%% | **%.1f%%** (%.1f µs by CPU time, %d allocs, vs %s; strict decode of its Job alone: %.1f µs, %.2f×) |\n",
			100*p.RenderPrepare/float64(plane.Nanoseconds()), p.RenderPrepare/1000, p.RenderPrepareAllocs, us(plane), p.StrictDecode/1000, p.Ratio)
	}
	if len(rep.Scale) >= 2 {
		lo, hi := rep.Scale[0], rep.Scale[len(rep.Scale)-1]
		fmt.Fprintf(&b, "\nGrowth from %d to %d runs (%.0f× the runs), per run: API requests %s, heap %s, client requests %s; watches %d → %d; detection p99 %s → %s.\n",
			lo.Runs, hi.Runs, float64(hi.Runs)/float64(lo.Runs),
			ratio(hi.APIServerRequestsPerRun, lo.APIServerRequestsPerRun), ratio(hi.HeapPerRun, lo.HeapPerRun), ratio(hi.ClientRequestsPerRun, lo.ClientRequestsPerRun),
			lo.WatchesOpen, hi.WatchesOpen, ms(lo.DetectP99), ms(hi.DetectP99))
	}
	if o := rep.Overload; o != nil {
		fmt.Fprintf(&b, "\nOverload: %d runs submitted at once while API Priority and Fairness held the Worker's user to %.0f seats of the API server (no borrowing; %d queues of %d): %d of %d ended as scripted (%s) in %s. The API server served %.0f of the user's requests and refused %s with 429; of the requests a Worker makes it counted %.0f (%.2f per run, %.0f answered 429) and %.0f namespaced LISTs of Jobs. The client sent %d requests (%.2f per run; client-go repeats a 429 with Retry-After itself), and the Creator retried %d creates.\n",
			o.Runs, o.Seats, o.Queues, o.QueueLength, o.Runs-wrongRuns(o), o.Runs, outcomesString(o.Outcomes), o.Elapsed.Round(time.Second),
			o.Dispatched, rejectedString(o.Rejected), o.APIServerRequests, o.APIServerRequests/float64(o.Runs), o.APIServer429, o.APIServerJobLists,
			o.ClientRequests, float64(o.ClientRequests)/float64(o.Runs), o.CreateRetries)
		if len(o.Wrong) > 0 {
			fmt.Fprintf(&b, "\n%d problems in the overload burst; the first:\n", len(o.Wrong))
			for _, wrong := range o.Wrong[:min(len(o.Wrong), maxWrong)] {
				fmt.Fprintf(&b, "\n- %s", wrong)
			}
			b.WriteString("\n")
		}
	}
	for _, s := range rep.Scale {
		if len(s.Wrong) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%d of %d runs did not end as they should at %d runs; the first:\n", len(s.Wrong), s.Runs, s.Runs)
		for _, wrong := range s.Wrong[:min(len(s.Wrong), maxWrong)] {
			fmt.Fprintf(&b, "\n- %s", wrong)
		}
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// UpdateFile puts the table of rep between the markers in the Markdown
// file at path, keeping the rest; a file without markers gets them at its
// end, and a missing file is created.
func UpdateFile(path string, rep *Report, command string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var table bytes.Buffer
	if err := WriteTable(&table, rep, command); err != nil {
		return err
	}
	block := beginMarker + "\n" + table.String() + "\n" + endMarker
	text := string(old)
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	switch {
	case i >= 0 && j > i:
		text = text[:i] + block + text[j+len(endMarker):]
	case len(text) > 0:
		text = strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
	default:
		text = "# Benchmarks\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// maxWrong is how many wrong runs the table lists, per size.
const maxWrong = 5

// ms writes d in milliseconds, with a decimal below 10 ms. A detection
// time can be below zero: the Worker's watch may get the pod's update
// before the independent one does.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f > -10 && f < 10 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// ratio says how b compares with a, as "×1.05".
func ratio(b, a float64) string {
	if a == 0 {
		return "n/a"
	}
	return fmt.Sprintf("×%.2f", b/a)
}

// us writes d in whole microseconds.
func us(d time.Duration) string {
	return fmt.Sprintf("%d µs", d.Microseconds())
}

// otherKinds lists the kinds of request the client made other than one
// successful create per run and its two watches, most first, when any
// came to 1% of the runs.
func otherKinds(s Scale) string {
	type kind struct {
		name string
		n    int64
	}
	var ks []kind
	for name, n := range s.ClientRequestKinds {
		switch name {
		case "create jobs 201", "watch jobs 200", "watch pods 200":
			continue
		}
		if n*100 >= int64(s.Runs) {
			ks = append(ks, kind{name, n})
		}
	}
	if len(ks) == 0 {
		return ""
	}
	slices.SortFunc(ks, func(a, b kind) int { return cmp.Compare(b.n, a.n) })
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s ×%d", k.name, k.n)
	}
	return "; besides a create per run: " + strings.Join(parts, ", ")
}

// wrongRuns is how many runs of the burst did not end as scripted.
func wrongRuns(o *Overload) int {
	bad := map[string]bool{}
	for _, w := range o.Wrong {
		run, _, _ := strings.Cut(w, ":")
		if f := strings.Fields(run); len(f) >= 2 {
			run = f[0] + " " + f[1]
		}
		bad[run] = true
	}
	return len(bad)
}

// outcomesString writes outcome counts, most first.
func outcomesString(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	for k, v := range m {
		kvs = append(kvs, kv{k, v})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return cmp.Or(cmp.Compare(b.v, a.v), cmp.Compare(a.k, b.k)) })
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = fmt.Sprintf("%d %s", p.v, p.k)
	}
	return strings.Join(parts, ", ")
}

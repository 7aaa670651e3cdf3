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

// The many-clusters table sits between these markers, apart from the
// suite's, so that it is measured (-clusters) and written on its own.
const (
	clustersBeginMarker = "<!-- benchsuite:clusters:begin -->"
	clustersEndMarker   = "<!-- benchsuite:clusters:end -->"
)

// The Kueue table sits between these markers, apart from the others, so
// that it is measured (-kueue) and written on its own.
const (
	kueueBeginMarker = "<!-- benchsuite:kueue:begin -->"
	kueueEndMarker   = "<!-- benchsuite:kueue:end -->"
)

// The fleet's takeover table sits between these markers (-fleet).
const (
	fleetBeginMarker = "<!-- benchsuite:fleet:begin -->"
	fleetEndMarker   = "<!-- benchsuite:fleet:end -->"
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

// WriteTable writes rep as Markdown tables with the goal of each figure
// and the command that reproduces it: the suite's table, then the
// many-clusters one, then the Kueue one, each if rep has its figures.
func WriteTable(w io.Writer, rep *Report, command string) error {
	var b bytes.Buffer
	if rep.hasMain() {
		writeMain(&b, rep, command)
	}
	if rep.Clusters != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		writeClusters(&b, rep, command)
	}
	if rep.Kueue != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		writeKueue(&b, rep, command)
	}
	if rep.Fleet != nil {
		if b.Len() > 0 {
			b.WriteString("\n")
		}
		writeFleet(&b, rep, command)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// hasMain says whether rep has any figure of the suite's table.
func (rep *Report) hasMain() bool {
	return len(rep.Submit) > 0 || len(rep.Scale) > 0 || rep.Overload != nil || rep.Prepare.RenderPrepare > 0
}

// writeMain writes the suite's table.
func writeMain(b *bytes.Buffer, rep *Report, command string) {
	fmt.Fprintf(b, "Measured %s on %s, in %s, with `%s`.\n\n", rep.Started.UTC().Format(time.DateTime+" MST"), rep.Machine, rep.Took.Round(time.Second), command)
	b.WriteString("| figure | goal | measured |\n|---|---|---|\n")
	for _, s := range rep.Submit {
		where := "client and control plane sharing the CPUs"
		if s.Isolated {
			where = "control plane on CPU 0, client on the others"
		}
		fmt.Fprintf(b, "| submission of %d Jobs at %g QPS (burst %d), %s, Worker throughput over a raw client-go Create loop | ≥ 0.9× | **%.2f×** (median of %d rounds; raw loop %s, Worker %s",
			s.Jobs, s.QPS, s.Burst, where, s.Ratio, s.Rounds, s.Raw.Round(time.Millisecond), s.Worker.Round(time.Millisecond))
		if s.Isolated {
			fmt.Fprintf(b, "; a raw loop that also watches its Jobs with a client-go informer: %.2f×, %s", s.WatchedRatio, s.Watched.Round(time.Millisecond))
		}
		fmt.Fprintf(b, "; Worker.Start %s, before the clock; control plane busy %.2f CPUs during the raw loop; CPU per Job, client / control plane: raw %s / %s, Worker %s / %s",
			s.Start.Round(time.Millisecond), s.ControlPlaneCores, us(s.Client[rawLoop]), us(s.Plane[rawLoop]), us(s.Client[workerRuns]), us(s.Plane[workerRuns]))
		if s.Isolated {
			fmt.Fprintf(b, ", watched raw %s / %s", us(s.Client[watchedLoop]), us(s.Plane[watchedLoop]))
		}
		b.WriteString(") |\n")
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(b, "| watch connections open, %d concurrent runs | O(namespaces) | **%d** (API server: +%.0f namespaced watches) |\n", s.Runs, s.WatchesOpen, s.APIServerWatches)
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(b, "| API requests per run, %d runs (API server's apiserver_request_total) | ≤ 3 | **%.3f** (client's own count: %.3f%s) |\n", s.Runs, s.APIServerRequestsPerRun, s.ClientRequestsPerRun, otherKinds(s.ClientRequestKinds, s.Runs))
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(b, "| LIST requests of Jobs, %d runs (API server's namespaced LISTs) | O(1), never per run | **%.0f** (the client's own: %d) |\n", s.Runs, s.APIServerJobLists, s.ClientRequestKinds["list jobs 200"])
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(b, "| completion detection, pod's terminal status → Run returns, %d runs | p99 ≤ 250 ms | p50 **%s**, p99 **%s** (%d of %d decided by the pod); a raw watch of the Job's condition: p50 %s, p99 %s |\n",
			s.Runs, ms(s.DetectP50), ms(s.DetectP99), s.FromPod, s.Runs, ms(s.JobControllerP50), ms(s.JobControllerP99))
	}
	for _, s := range rep.Scale {
		fmt.Fprintf(b, "| Worker heap per tracked run, %d runs | ≤ 16 KiB | **%.1f KiB** (+ %.1f KiB goroutine stack) |\n", s.Runs, s.HeapPerRun/1024, s.StackPerRun/1024)
	}
	p := rep.Prepare
	if plane := leastPlanePerJob(rep.Submit); plane > 0 {
		fmt.Fprintf(b, "| render+prepare of the default template vs the control plane's CPU per Job (the least of the submission rows, raw loop) | ≤ 5%% | **%.1f%%** (%.1f µs by CPU time, %d allocs, vs %s; strict decode of its Job alone: %.1f µs, %.2f×) |\n",
			100*p.RenderPrepare/float64(plane.Nanoseconds()), p.RenderPrepare/1000, p.RenderPrepareAllocs, us(plane), p.StrictDecode/1000, p.Ratio)
	}
	if len(rep.Scale) >= 2 {
		lo, hi := rep.Scale[0], rep.Scale[len(rep.Scale)-1]
		fmt.Fprintf(b, "\nGrowth from %d to %d runs (%.0f× the runs), per run: API requests %s, heap %s, client requests %s; watches %d → %d; detection p99 %s → %s.\n",
			lo.Runs, hi.Runs, float64(hi.Runs)/float64(lo.Runs),
			ratio(hi.APIServerRequestsPerRun, lo.APIServerRequestsPerRun), ratio(hi.HeapPerRun, lo.HeapPerRun), ratio(hi.ClientRequestsPerRun, lo.ClientRequestsPerRun),
			lo.WatchesOpen, hi.WatchesOpen, ms(lo.DetectP99), ms(hi.DetectP99))
	}
	if o := rep.Overload; o != nil {
		fmt.Fprintf(b, "\nOverload: %d runs submitted at once while API Priority and Fairness held the Worker's user to %.0f seats of the API server (no borrowing; %d queues of %d): %d of %d ended as scripted (%s) in %s. The API server served %.0f of the user's requests and refused %s with 429; of the requests a Worker makes it counted %.0f (%.2f per run, %.0f answered 429) and %.0f namespaced LISTs of Jobs. The client sent %d requests (%.2f per run; client-go repeats a 429 with Retry-After itself), and the Creator retried %d creates.\n",
			o.Runs, o.Seats, o.Queues, o.QueueLength, o.Runs-wrongRuns(o), o.Runs, outcomesString(o.Outcomes), o.Elapsed.Round(time.Second),
			o.Dispatched, rejectedString(o.Rejected), o.APIServerRequests, o.APIServerRequests/float64(o.Runs), o.APIServer429, o.APIServerJobLists,
			o.ClientRequests, float64(o.ClientRequests)/float64(o.Runs), o.CreateRetries)
		if len(o.Wrong) > 0 {
			fmt.Fprintf(b, "\n%d problems in the overload burst; the first:\n", len(o.Wrong))
			for _, wrong := range o.Wrong[:min(len(o.Wrong), maxWrong)] {
				fmt.Fprintf(b, "\n- %s", wrong)
			}
			b.WriteString("\n")
		}
	}
	for _, s := range rep.Scale {
		if len(s.Wrong) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%d of %d runs did not end as they should at %d runs; the first:\n", len(s.Wrong), s.Runs, s.Runs)
		for _, wrong := range s.Wrong[:min(len(s.Wrong), maxWrong)] {
			fmt.Fprintf(b, "\n- %s", wrong)
		}
		b.WriteString("\n")
	}
}

// writeClusters writes the many-clusters table: a column per way the
// runs were sent, a row per figure.
func writeClusters(b *bytes.Buffer, rep *Report, command string) {
	c := rep.Clusters
	fmt.Fprintf(b, "Measured %s on %s, in %s (the second cluster started in %s, warm, and was stopped after), with `%s`.\n\n",
		rep.Started.UTC().Format(time.DateTime+" MST"), rep.Machine, c.Elapsed.Round(time.Second), c.SecondStart.Round(100*time.Millisecond), command)
	if len(c.Ways) == 0 {
		return
	}
	b.WriteString("| figure | expected |")
	for _, w := range c.Ways {
		fmt.Fprintf(b, " %s |", w.Way)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(c.Ways)) + "\n")
	row := func(figure, expected string, cell func(w ClusterWay) string) {
		fmt.Fprintf(b, "| %s | %s |", figure, expected)
		for _, w := range c.Ways {
			fmt.Fprintf(b, " %s |", cell(w))
		}
		b.WriteString("\n")
	}
	row("runs, by the cluster Result.Cluster named", "as sent", func(w ClusterWay) string {
		return fmt.Sprintf("%d: %s", w.Runs, resultsString(w.Results))
	})
	row("watch connections the Worker held once every run had returned (its clients' transports)", "2 per namespace per cluster", func(w ClusterWay) string {
		var sum int64
		var parts []string
		uncounted := false
		for _, n := range w.WatchesOpen {
			if n < 0 {
				uncounted = true
				parts = append(parts, "not counted")
				continue
			}
			sum += n
			parts = append(parts, fmt.Sprint(n))
		}
		switch {
		case uncounted:
			return fmt.Sprintf("**%s** (the second cluster's client is the Worker's own, made from the run's kubeconfig)", strings.Join(parts, " + "))
		case len(parts) > 1:
			return fmt.Sprintf("**%d** (%s)", sum, strings.Join(parts, " + "))
		}
		return fmt.Sprintf("**%d**", sum)
	})
	row("namespaced Job and pod watches, rise on each API server at that moment", "+2 per cluster", func(w ClusterWay) string {
		parts := make([]string, len(w.APIServerWatches))
		for i, n := range w.APIServerWatches {
			parts[i] = fmt.Sprintf("+%.0f", n)
		}
		return strings.Join(parts, ", ")
	})
	one := c.Ways[0]
	row("API requests per run (API servers' apiserver_request_total, summed over the clusters)", "≈ one cluster's", func(w ClusterWay) string {
		cell := fmt.Sprintf("**%.3f**", w.RequestsPerRun())
		if len(w.APIServerRequests) > 1 {
			parts := make([]string, len(w.APIServerRequests))
			for i, n := range w.APIServerRequests {
				parts[i] = fmt.Sprintf("%.0f", n)
			}
			cell += fmt.Sprintf(" (%s requests; %s one cluster's)", strings.Join(parts, " + "), ratio(w.RequestsPerRun(), one.RequestsPerRun()))
		}
		return cell
	})
	row("client requests per run (the Worker's counted clients)", "≈ one cluster's", func(w ClusterWay) string {
		if slices.Contains(w.WatchesOpen, -1) {
			own := runsIn(w.Runs, w.Clusters, 0)
			return fmt.Sprintf("%.3f per run in the own cluster, whose client alone is counted%s", float64(w.ClientRequests)/float64(own), otherKinds(w.ClientRequestKinds, own))
		}
		return fmt.Sprintf("%.3f%s", float64(w.ClientRequests)/float64(w.Runs), otherKinds(w.ClientRequestKinds, w.Runs))
	})
	row("Worker heap per run, every run returned, the Worker open (its streams' caches hold the runs' Jobs and pods)", "≈ one cluster's", func(w ClusterWay) string {
		cell := fmt.Sprintf("**%s**", kib(w.HeapRan))
		if w.Way != one.Way {
			cell += fmt.Sprintf(" (%s one cluster's)", ratio(w.HeapRan, one.HeapRan))
		}
		return cell
	})
	row("Worker heap per run as soon as Close returned", "≈ 0", func(w ClusterWay) string {
		return fmt.Sprintf("%s (%.1f MiB in all)", kib(w.HeapClosed), w.HeapClosed*float64(w.Runs)/(1<<20))
	})
	row(fmt.Sprintf("Worker heap per run %s after Close", one.Settle.Round(time.Second)), "≈ 0", func(w ClusterWay) string {
		return fmt.Sprintf("%s (%.1f MiB in all)", kib(w.HeapSettled), w.HeapSettled*float64(w.Runs)/(1<<20))
	})
	row("wall time, first Run to last return", "", func(w ClusterWay) string {
		cell := w.Took.Round(100 * time.Millisecond).String()
		if w.Way != one.Way {
			cell += fmt.Sprintf(" (%s one cluster's)", ratio(w.Took.Seconds(), one.Took.Seconds()))
		}
		return cell
	})
	row("the Worker's Jobs in each cluster after the runs", "the runs sent there", func(w ClusterWay) string {
		parts := make([]string, len(w.Jobs))
		for i, n := range w.Jobs {
			parts[i] = fmt.Sprint(n)
		}
		return strings.Join(parts, " + ")
	})
	for _, w := range c.Ways {
		if len(w.Wrong) == 0 {
			continue
		}
		fmt.Fprintf(b, "\n%d problems, %s; the first:\n", len(w.Wrong), w.Way)
		for _, wrong := range w.Wrong[:min(len(w.Wrong), maxWrong)] {
			fmt.Fprintf(b, "\n- %s", wrong)
		}
		b.WriteString("\n")
	}
}

// resultsString writes how many Results named each cluster, the own one
// first, then by count; a cluster named by its UID is called "its UID".
func resultsString(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	for k, v := range m {
		kvs = append(kvs, kv{k, v})
	}
	own := func(k string) int {
		if k == ownClusterName {
			return 0
		}
		return 1
	}
	slices.SortFunc(kvs, func(a, b kv) int {
		return cmp.Or(cmp.Compare(own(a.k), own(b.k)), cmp.Compare(b.v, a.v), cmp.Compare(a.k, b.k))
	})
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		name := fmt.Sprintf("%q", p.k)
		if p.k != ownClusterName && p.k != secondClusterName {
			name = "its UID"
		}
		parts[i] = fmt.Sprintf("%d %s", p.v, name)
	}
	return strings.Join(parts, ", ")
}

// kib writes a size in bytes in KiB, with a decimal.
func kib(bytes float64) string {
	return fmt.Sprintf("%.1f KiB", bytes/1024)
}

// UpdateFile puts the tables of rep between their markers in the
// Markdown file at path, keeping the rest: the suite's table if rep has
// its figures, the many-clusters one and the Kueue one if rep has them,
// so a run of one measurement leaves the others' tables alone. A file without a table's
// markers gets them at its end, and a missing file is created.
func UpdateFile(path string, rep *Report, command string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if len(text) == 0 {
		text = "# Benchmarks\n"
	}
	if rep.hasMain() {
		var table bytes.Buffer
		writeMain(&table, rep, command)
		text = putTable(text, beginMarker, endMarker, table.String())
	}
	if rep.Clusters != nil {
		var table bytes.Buffer
		writeClusters(&table, rep, command)
		text = putTable(text, clustersBeginMarker, clustersEndMarker, table.String())
	}
	if rep.Kueue != nil {
		var table bytes.Buffer
		writeKueue(&table, rep, command)
		text = putTable(text, kueueBeginMarker, kueueEndMarker, table.String())
	}
	if rep.Fleet != nil {
		var table bytes.Buffer
		writeFleet(&table, rep, command)
		text = putTable(text, fleetBeginMarker, fleetEndMarker, table.String())
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// putTable puts table between the markers begin and end in text, or
// with them at its end.
func putTable(text, begin, end, table string) string {
	block := begin + "\n" + table + "\n" + end
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i >= 0 && j > i {
		return text[:i] + block + text[j+len(end):]
	}
	return strings.TrimRight(text, "\n") + "\n\n" + block + "\n"
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

// otherKinds lists the kinds of request in kinds other than one
// successful create per run and its two watches, most first, when any
// came to 1% of the runs.
func otherKinds(kinds map[string]int64, runs int) string {
	type kind struct {
		name string
		n    int64
	}
	var ks []kind
	for name, n := range kinds {
		switch name {
		case "create jobs 201", "watch jobs 200", "watch pods 200":
			continue
		}
		if n*100 >= int64(runs) {
			ks = append(ks, kind{name, n})
		}
	}
	if len(ks) == 0 {
		return ""
	}
	slices.SortFunc(ks, func(a, b kind) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.name, b.name)) })
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

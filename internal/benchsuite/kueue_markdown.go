package benchsuite

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// writeKueue writes the Kueue table: a row per figure.
func writeKueue(b *bytes.Buffer, rep *Report, command string) {
	k := rep.Kueue
	fmt.Fprintf(b, "Measured %s on %s, in %s (Kueue started and its queue made in %s, warm), with `%s`.\n\n",
		rep.Started.UTC().Format(time.DateTime+" MST"), rep.Machine, k.Elapsed.Round(time.Second), k.KueueStart.Round(100*time.Millisecond), command)
	b.WriteString("| figure | expected | measured |\n|---|---|---|\n")
	row := func(figure, expected, measured string) {
		fmt.Fprintf(b, "| %s | %s | %s |\n", figure, expected, measured)
	}
	row(fmt.Sprintf("runs through one LocalQueue, quota for %d at once (1 CPU each), pods running 1–2 s, by outcome", k.Quota),
		fmt.Sprintf("%d Succeeded", k.Runs), fmt.Sprintf("**%s**", outcomesString(k.Outcomes)))
	row("runs that waited for admission (Result.Queue.Waited > 0; the cluster's times, whole seconds), and Waited of those",
		fmt.Sprintf("about %d of %d", max(k.Runs-k.Quota, 0), k.Runs),
		fmt.Sprintf("**%d** of %d; p50 %s, max %s (by the child's clock, Job created → a raw watch sees it admitted, every run: p50 %s, max %s)",
			k.Waited, k.Runs, secs(k.WaitedP50), secs(k.WaitedMax), secs(k.QueuedP50), secs(k.QueuedMax)))
	row("watch connections the Worker held once every run had returned (its client's transport), and the watches it opened in all, by resource", "3 per namespace: Jobs, pods, Workloads",
		fmt.Sprintf("**%d** (opened: %s)", k.WatchesOpen, watchesOpened(k.ClientRequestKinds)))
	row("namespaced watches, rise on the API server at that moment, by resource", "+1 each",
		fmt.Sprintf("jobs +%.0f, pods +%.0f, workloads **+%.0f**", k.APIServerWatches["jobs"], k.APIServerWatches["pods"], k.APIServerWatches["workloads"]))
	row("API requests per run (API server's apiserver_request_total, the kinds a Worker makes, Kueue's writes to the Jobs among them)",
		"≈ 2.0 without a queue (the suite's table: a create, and the test cluster's check that kwok serves the pod's log, CONNECT pods/log), plus Kueue's resume of each Job",
		fmt.Sprintf("**%.3f** (%s)", k.APIServerRequestsPerRun(), kindsString(k.APIServerRequests)))
	row("client requests per run (the Worker's counted client)", "≈ 1.0 without a queue (the suite's table)",
		fmt.Sprintf("%.3f%s", float64(k.ClientRequests)/float64(k.Runs), otherKinds(k.ClientRequestKinds, k.Runs)))
	row("admission → Run: a raw watch in the child sees the Workload's Admitted=True → the run's EventSink gets jobwatch.ReasonAdmitted (the child's clock)",
		"small, like completion detection",
		fmt.Sprintf("p50 **%s**, p99 **%s**, max **%s** (min %s; %d of %d runs timed, %d below zero: the sink first)",
			ms(k.AdmissionP50), ms(k.AdmissionP99), ms(k.AdmissionMax), ms(k.AdmissionMin), k.Timed, k.Runs, k.Negative))
	row("Worker heap per run, every run returned, the Worker open (its streams' caches hold the runs' Jobs, pods and Workloads)",
		"≈ the many-clusters table's one cluster", fmt.Sprintf("**%s**", kib(k.HeapRan)))
	row("most Workloads holding quota at once (the ClusterQueue's status.reservingWorkloads, read every 0.5 s)", fmt.Sprintf("%d: the quota holds runs back", k.Quota),
		fmt.Sprintf("**%d**", k.PeakReserving))
	row("time a run held quota: admitted → its Job finished (Result's Queue.AdmittedAt → FinishedAt, the cluster's whole seconds), and of it admitted → the Job started",
		"a little over the pod's 1–2 s",
		fmt.Sprintf("p50 **%s**, max %s; admitted → started p50 %s", secs(k.HeldP50), secs(k.HeldMax), secs(k.StartP50)))
	rounds := (k.Runs + k.Quota - 1) / max(k.Quota, 1)
	row("wall time, first Run to last return", fmt.Sprintf("≥ %d rounds of the quota × 1–2 s", rounds),
		fmt.Sprintf("%s (Kueue admitted %.1f runs/s, first admission to last, as the raw watch saw them)", k.Took.Round(100*time.Millisecond), k.AdmissionsPerSecond))
	if len(k.Wrong) > 0 {
		fmt.Fprintf(b, "\n%d problems; the first:\n", len(k.Wrong))
		for _, wrong := range k.Wrong[:min(len(k.Wrong), maxWrong)] {
			fmt.Fprintf(b, "\n- %s", wrong)
		}
		b.WriteString("\n")
	}
}

// kindsString writes requests by kind, most first: "POST jobs 1000, PUT
// jobs 1000".
func kindsString(kinds map[string]float64) string {
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(kinds[b], kinds[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %.0f", name, kinds[name])
	}
	return strings.Join(parts, ", ")
}

// watchesOpened writes the watch requests among kinds ("verb resource
// code" counts) by resource, whatever their code: "jobs 1, pods 1".
func watchesOpened(kinds map[string]int64) string {
	by := map[string]int64{}
	for kind, n := range kinds {
		if f := strings.Fields(kind); len(f) == 3 && f[0] == "watch" {
			by[f[1]] += n
		}
	}
	names := slices.Sorted(maps.Keys(by))
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, by[name])
	}
	return strings.Join(parts, ", ")
}

// secs writes d in seconds, with a decimal.
func secs(d time.Duration) string {
	return fmt.Sprintf("%.1f s", d.Seconds())
}

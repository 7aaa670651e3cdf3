// Command bench runs kubeworker's benchmark suite on a local control plane
// it starts, and writes the figures into BENCHMARKS.md between the suite's
// markers.
//
//	go run ./internal/benchsuite/cmd/bench -sizes 1000,5000 -o BENCHMARKS.md
//
// -clusters N adds the many-clusters measurement (N runs in one cluster,
// then spread over two), and -only runs only the measurements named, so
// this one alone is
//
//	go run ./internal/benchsuite/cmd/bench -only clusters -clusters 1000 -o BENCHMARKS.md
//
// which rewrites only its own table in BENCHMARKS.md. -kueue N likewise
// adds the Kueue measurement (N runs through one LocalQueue with quota for
// -kueue-quota of them at once; it starts Kueue, built if the cache
// lacks it):
//
//	go run ./internal/benchsuite/cmd/bench -only kueue -kueue 1000 -o BENCHMARKS.md
//
// -fleet N adds the takeover measurement: N running runs on one of three
// worker replicas (processes), which is SIGKILLed; the two others take
// them over:
//
//	go run ./internal/benchsuite/cmd/bench -only fleet -fleet 1000 -o BENCHMARKS.md
//
// Run it on a quiet machine: figures taken while other work runs say
// little. The API server runs with its watch cache on, as real ones do.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/benchsuite"
	"github.com/kubeworker/kubeworker/internal/fleettest"
)

func main() {
	benchsuite.ChildMain()
	fleettest.ReplicaMain()
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("bench", flag.ContinueOnError)
	sizes := flags.String("sizes", "1000,5000", "numbers of concurrent runs to measure, comma-separated")
	out := flags.String("o", "BENCHMARKS.md", "Markdown file to write the tables into")
	var opts benchsuite.Options
	flags.IntVar(&opts.SubmitJobs, "submit", 1000, "Jobs per way of creating in a submission round")
	flags.IntVar(&opts.SubmitRounds, "rounds", 7, "submission rounds")
	flags.IntVar(&opts.Overload, "overload", 2000, "runs of the overload burst, submitted at once while the API server starves the Worker; 0: none")
	flags.IntVar(&opts.Clusters, "clusters", 0, "runs of the many-clusters measurement, in one cluster then spread over two; 0: none")
	flags.IntVar(&opts.Kueue, "kueue", 0, "runs of the Kueue measurement, through one LocalQueue; 0: none")
	flags.IntVar(&opts.Fleet, "fleet", 0, "running runs the takeover measurement has two replicas take over from a third, SIGKILLed; 0: none")
	flags.IntVar(&opts.KueueQuota, "kueue-quota", 100, "runs the Kueue measurement's ClusterQueue admits at once (its CPU quota, a CPU per pod)")
	only := flags.String("only", "", "measurements to take, comma-separated, of prepare, scale, submit, overload, clusters, fleet, kueue; default: all")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *only != "" {
		for _, name := range strings.Split(*only, ",") {
			opts.Only = append(opts.Only, strings.TrimSpace(name))
		}
	}
	if err := opts.Check(); err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a positive number", s)
		}
		opts.Sizes = append(opts.Sizes, n)
	}
	opts.Progress = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var prepare benchsuite.Prepare
	if opts.Takes("prepare") {
		fmt.Fprintln(os.Stderr, "bench: render+prepare against strict decode, before the cluster starts")
		var err error
		if prepare, err = benchsuite.MeasurePrepare(); err != nil {
			return fmt.Errorf("render+prepare: %w", err)
		}
	}
	cluster, err := clustertest.Start(ctx, clustertest.Options{Progress: os.Stderr, WatchCache: true})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	rep, err := benchsuite.Run(ctx, cluster, opts)
	if err != nil {
		return err
	}
	rep.Prepare, rep.Started, rep.Took = prepare, start, time.Since(start)
	command := "go run ./internal/benchsuite/cmd/bench " + strings.Join(args, " ")
	if err := benchsuite.WriteTable(os.Stdout, rep, command); err != nil {
		return err
	}
	return benchsuite.UpdateFile(*out, rep, command)
}

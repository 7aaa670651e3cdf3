package soak

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/fleettest"
)

var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	fleettest.ReplicaMain()
	flag.Parse()
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
}

// The long soak's settings (`make soak`); the defaults are the short
// soak of `make test`.
var (
	seed       = flag.Uint64("soak.seed", 0, "seed of the fates and faults (0: from the clock)")
	duration   = flag.Duration("soak.duration", 0, "how long runs are handed out and faults made (0: 90s)")
	rate       = flag.Int("soak.rate", 0, "runs handed out a minute (0: 60)")
	maxRun     = flag.Duration("soak.maxrun", 0, "the longest a pod runs (0: 20s)")
	faultEvery = flag.Duration("soak.faultevery", 0, "mean gap between faults (0: 6s)")
	burst      = flag.Int("soak.burst", 0, "runs of the starved user's burst (0: 150; -1: none)")
	reportTo   = flag.String("soak.report", "", "file to write the report to, as well as the test log")
)

// TestSoak runs the mixed-fault soak and fails on any violation; each
// names the run, the seed and what differed.
func TestSoak(t *testing.T) {
	namespaces := [3]string{cluster.NewNamespace(t), cluster.NewNamespace(t), cluster.NewNamespace(t)}
	cfg := Config{Seed: *seed, Duration: *duration, RunsPerMinute: *rate, MaxRunTime: *maxRun, FaultEvery: *faultEvery, Burst: *burst, Logf: t.Logf}
	r, err := Run(t.Context(), cluster, namespaces, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r.Print(&out)
	t.Log("\n" + out.String())
	if *reportTo != "" {
		if err := os.WriteFile(*reportTo, []byte(out.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	if len(r.Violations) > 0 {
		t.Logf("workers' stderr:\n%s", r.Stderr)
		t.Errorf("%d violations with seed %d (rerun: go test -run TestSoak ./internal/soak -args -soak.seed=%d)", len(r.Violations), r.Seed, r.Seed)
	}
	// Every kind of fault was made.
	for _, kind := range faultKinds {
		if r.Faults[kind] == 0 && time.Duration(len(faultKinds))*r.Config.FaultEvery < r.Config.Duration {
			t.Errorf("no %s fault was made", kind)
		}
	}
}

package clustertest

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Main starts a cluster, stores it in *cluster, runs the tests and stops
// the cluster; it returns the exit code for os.Exit. Use it from TestMain:
//
//	var cluster *clustertest.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
//	}
//
// Progress and background errors go to standard error unless opts says
// otherwise. If the cluster cannot start, Main prints why and returns 1
// without running a test: a test binary that needs the cluster fails, it
// never skips. A failed Stop also fails the run, and so does a goroutine
// started during the run that is still alive after Stop (goleak; klog's
// process-wide flush daemon excepted): no test needs its own leak check. A cold build (see
// [Provision]) takes longer than go test's default timeout: provision
// before go test.
func Main(m *testing.M, cluster **Cluster, opts Options) int {
	if fuzzing() {
		// go test -fuzz runs the binary as a coordinator and as workers
		// that only fuzz: they need no cluster, and must not start one
		// each. Fuzz with -run='^$': an end-to-end test run there fails.
		return m.Run()
	}
	before := goleak.IgnoreCurrent()
	if opts.Progress == nil {
		opts.Progress = os.Stderr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	c, err := Start(ctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "clustertest: the test cluster did not start: %v\n", err)
		return 1
	}
	*cluster = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "clustertest: stop: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(before, goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "clustertest: goroutines left after the tests and Stop: %v\n", err)
			code = 1
		}
	}
	return code
}

// fuzzing reports whether this test binary runs for go test -fuzz, as the
// coordinator or one of its workers.
func fuzzing() bool {
	if !flag.Parsed() {
		flag.Parse() // TestMain runs before the testing package parses
	}
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

package secrets_test

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/kubeworker/kubeworker/internal/testcluster"
)

// cluster is the local control plane of the end-to-end tests, started once
// for the package by TestMain.
var cluster *testcluster.Cluster

// TestMain starts the test cluster, runs the tests, stops the cluster and
// then fails the binary if a goroutine is left behind. A cluster that does
// not start fails the binary: nothing is skipped.
//
// When fuzzing (-fuzz) no cluster is started, since every fuzz worker
// process runs TestMain too and the fuzz targets need none; fuzz with
// -run='^$', as the Makefile does, or the end-to-end tests fail.
func TestMain(m *testing.M) {
	flag.Parse()
	var code int
	if fuzzing() {
		code = m.Run()
	} else {
		code = testcluster.Main(m, &cluster, testcluster.Options{})
	}
	if code == 0 {
		if err := goleak.Find(leakOptions...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions would list goroutines that may outlive the tests; none do:
// the cluster's Stop closes every connection the clients opened.
var leakOptions []goleak.Option

func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// needCluster returns the test cluster, failing the test if there is none.
func needCluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	if cluster == nil {
		t.Fatal("no test cluster: in fuzz mode none is started; fuzz with -run='^$'")
	}
	return cluster
}

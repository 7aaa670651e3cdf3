package clusterid_test

import (
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
// not start fails the binary: nothing is skipped. Under -fuzz no cluster is
// started (see testcluster.Main); fuzz with -run='^$'.
func TestMain(m *testing.M) {
	before := goleak.IgnoreCurrent()
	code := testcluster.Main(m, &cluster, testcluster.Options{})
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needCluster returns the test cluster, failing the test if there is none.
func needCluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	if cluster == nil {
		t.Fatal("no test cluster: in fuzz mode none is started; fuzz with -run='^$'")
	}
	return cluster
}

package secrets_test

import (
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/internal/testcluster"
)

// cluster is the local control plane of the end-to-end tests, started once
// for the package by TestMain.
var cluster *testcluster.Cluster

// TestMain starts the test cluster; testcluster.Main also fails the binary
// if a goroutine outlives the tests.
func TestMain(m *testing.M) {
	os.Exit(testcluster.Main(m, &cluster, testcluster.Options{}))
}

// needCluster returns the test cluster, failing the test if there is none.
func needCluster(t *testing.T) *testcluster.Cluster {
	t.Helper()
	if cluster == nil {
		t.Fatal("no test cluster: in fuzz mode none is started; fuzz with -run='^$'")
	}
	return cluster
}

package fleet_test

import (
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/clustertest"
)

// cluster is the local control plane of the end-to-end tests, started once
// for the package by TestMain.
var cluster *clustertest.Cluster

// TestMain starts the test cluster; clustertest.Main also fails the binary
// if a goroutine outlives the tests.
func TestMain(m *testing.M) {
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
}

// needCluster returns the test cluster, failing the test if there is none.
func needCluster(t *testing.T) *clustertest.Cluster {
	t.Helper()
	if cluster == nil {
		t.Fatal("no test cluster")
	}
	return cluster
}

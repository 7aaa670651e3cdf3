package clustertest

import (
	"os"
	"testing"
)

// cluster is started once for the package's tests.
var cluster *Cluster

// TestMain: Main itself fails the binary if Stop leaves a goroutine.
func TestMain(m *testing.M) {
	os.Exit(Main(m, &cluster, Options{}))
}

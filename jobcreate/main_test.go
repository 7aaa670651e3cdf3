package jobcreate

import (
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/clustertest"
)

// cluster is the real control plane the end-to-end tests use.
var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
}

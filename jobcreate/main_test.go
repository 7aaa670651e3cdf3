package jobcreate

import (
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/internal/testcluster"
)

// cluster is the real control plane the end-to-end tests use.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(testcluster.Main(m, &cluster, testcluster.Options{}))
}

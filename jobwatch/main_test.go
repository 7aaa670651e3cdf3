package jobwatch

import (
	"os"
	"testing"

	"github.com/kubeworker/kubeworker/clustertest"
)

// cluster is the real control plane of the end-to-end tests (e2e_*.go),
// started once for the package.
var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(scaleChildEnv) != "" {
		os.Exit(scaleChild()) // a child of TestE2EScale*: no cluster of its own
	}
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{})) // leak-checked there
}

package worker

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/kubeworker/kubeworker/internal/testcluster"
)

// cluster is the real control plane the end-to-end tests use.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	code := testcluster.Main(m, &cluster, testcluster.Options{})
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

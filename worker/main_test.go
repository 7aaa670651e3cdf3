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
	before := goleak.IgnoreCurrent() // what runs before any test, not after
	code := testcluster.Main(m, &cluster, testcluster.Options{})
	if code == 0 {
		if err := goleak.Find(before); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

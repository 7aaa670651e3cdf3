package jobwatch

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/kubeworker/kubeworker/internal/testcluster"
)

// cluster is the real control plane of the end-to-end tests (e2e_*.go),
// started once for the package.
var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(scaleChildEnv) != "" {
		os.Exit(scaleChild()) // a child of TestE2EScale*: no cluster of its own
	}
	before := goleak.IgnoreCurrent()
	code := testcluster.Main(m, &cluster, testcluster.Options{})
	if code == 0 {
		// Every Watcher is closed by now and the cluster is gone: no
		// goroutine of ours may be left.
		if err := goleak.Find(before, goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

package testcluster

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// cluster is started once for the package's tests.
var cluster *Cluster

func TestMain(m *testing.M) {
	code := Main(m, &cluster, Options{})
	if code == 0 {
		// Stop must leave no goroutine of the harness behind.
		if err := goleak.Find(goleak.IgnoreTopFunction("k8s.io/klog/v2.(*flushDaemon).run.func1")); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines left after Stop: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

package agent

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/worker"
)

// cluster is the real control plane the end-to-end tests use.
var cluster *clustertest.Cluster

func TestMain(m *testing.M) {
	os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
}

// newTestWorker returns a Worker on the local cluster that creates its
// Jobs in ns, closed when the test ends.
func newTestWorker(t *testing.T, ns string, opts worker.Options) *worker.Worker {
	t.Helper()
	client, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		t.Fatal(err)
	}
	opts.Namespace = ns
	w, err := worker.New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

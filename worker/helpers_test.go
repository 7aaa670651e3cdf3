package worker

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/internal/jobtest"
)

// Helpers shared by this package's tests (see internal/jobtest).

var (
	fastRetry          = jobtest.FastRetry
	testJob            = jobtest.Job
	assertOneJobPerRun = jobtest.AssertOneJobPerRun
)

func adminClient(t testing.TB) kubernetes.Interface { return jobtest.Client(t, cluster.Config()) }

func proxiedClient(t *testing.T) kubernetes.Interface {
	return jobtest.Client(t, cluster.ProxyConfig())
}

// preparedJob renders the default template for a run in namespace ns.
func preparedJob(t *testing.T, ns, runID string, values map[string]any) *batchv1.Job {
	return jobtest.Prepared(t, ns, runID, values)
}

// jobsPerRun counts the Jobs in ns by run ID, read directly, not through
// the proxy.
func jobsPerRun(t *testing.T, ns string) map[string]int {
	return jobtest.JobsPerRun(t, adminClient(t), ns)
}

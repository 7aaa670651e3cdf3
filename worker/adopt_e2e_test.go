package worker

import (
	"testing"

	"github.com/kubeworker/kubeworker/jobwatch"
)

// TestASecondRunWithTheSameIDFollowsTheFirstRunsJob: Run twice with one
// run ID and the same values is one Job, followed twice to one Result.
func TestASecondRunWithTheSameIDFollowsTheFirstRunsJob(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := fateWorker(t, adminClient(t), ns, "twice", Options{})
	values := fate(map[string]string{"test.kubeworker.io/exit-code": "6"})
	first, err := w.Run(t.Context(), RunSpec{ID: "twice-1", Values: values})
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.Run(t.Context(), RunSpec{ID: "twice-1", Values: values})
	if err != nil {
		t.Fatal(err)
	}
	if second.PID != first.PID || second.Outcome != jobwatch.Failed || second.ExitCode != 6 || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("second Run %+v, first %+v", second, first)
	}
	assertOneJobPerRun(t, jobsPerRun(t, ns), 1)
}

package worker

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// TestE2ERunsRideOutAPIServerRestarts starts runs before, during and
// after two API server restarts (a kill, then a graceful one): creates
// meet refused connections and dropped answers, Waits meet dropped
// watches. Every Run must end with its scripted outcome and one Job.
func TestE2ERunsRideOutAPIServerRestarts(t *testing.T) {
	const runs = 40
	ns := cluster.NewNamespace(t)
	w := fateWorker(t, adminClient(t), ns, "restarts", Options{})
	if err := w.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*e2eTimeout)
	defer cancel()
	results := make([]Result, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			// A run every 150 ms: some are created before the first
			// restart, some while the API server is down, some after.
			time.Sleep(time.Duration(i) * 150 * time.Millisecond)
			ann := map[string]string{clustertest.AnnotationDelay: "1s", clustertest.AnnotationJitter: "6s"}
			if i%4 == 0 {
				ann[clustertest.AnnotationExitCode] = "7"
			}
			results[i], errs[i] = w.Run(ctx, RunSpec{ID: fmt.Sprintf("restart-%02d", i), Values: fate(ann)})
		})
	}
	time.Sleep(time.Second)
	if err := cluster.RestartAPIServer(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := cluster.RestartAPIServer(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range runs {
		want, code := jobwatch.Succeeded, 0
		if i%4 == 0 {
			want, code = jobwatch.Failed, 7
		}
		switch {
		case errs[i] != nil:
			t.Errorf("run %d: %v", i, errs[i])
		case results[i].Outcome != want || results[i].ExitCode != code:
			t.Errorf("run %d: %s, exit code %d (%s: %s); want %s, %d", i, results[i].Outcome, results[i].ExitCode, results[i].Reason, results[i].Message, want, code)
		}
	}
	assertOneJobPerRun(t, jobsPerRun(t, ns), runs)
}

package worker

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// cutEvery cuts every connection through the proxy every period until the
// returned stop is called; stop returns how many connections were cut.
func cutEvery(period time.Duration) (stop func() int) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	cut := 0
	wg.Go(func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				cut += cluster.Proxy().CutAll()
			}
		}
	})
	return func() int {
		close(done)
		wg.Wait()
		return cut
	}
}

// TestE2EAttachRidesOutConnectionCuts is a worker replaced mid-way by a
// new one that attaches by PID while its connections are cut again and
// again: every Attach (its UID read, its GET of the Job, its Wait) must
// ride the cuts out and return the run's Result, never a transport error.
func TestE2EAttachRidesOutConnectionCuts(t *testing.T) {
	const runs = 30
	ns := cluster.NewNamespace(t)
	old := fateWorker(t, adminClient(t), ns, "cut-attach", Options{})
	pids := make([]clusterid.PID, runs)
	for i := range runs {
		ann := map[string]string{clustertest.AnnotationDelay: "3s", clustertest.AnnotationJitter: "8s"}
		if i%3 == 0 {
			ann[clustertest.AnnotationExitCode] = "3"
		}
		pids[i] = abandon(t, old, RunSpec{ID: fmt.Sprintf("cut-attach-%02d", i), Values: fate(ann)})
	}

	// The new worker talks through the proxy, and attaches while it cuts:
	// the first GET of each Job is refused (503, as from a gateway whose
	// backend restarts: client-go does not repeat it), the second loses
	// its answer (the connection drops once the API server has answered),
	// and every connection is cut every 250 ms besides.
	before := cluster.Proxy().Stats()
	jobGet := func(r *http.Request) (string, bool) {
		name, ok := strings.CutPrefix(r.URL.Path, "/apis/batch/v1/namespaces/"+ns+"/jobs/")
		return name, ok && r.Method == http.MethodGet && r.URL.Query().Get("watch") == ""
	}
	refused := map[string]bool{} // the proxy calls match under its lock
	undo := cluster.Proxy().Refuse(func(r *http.Request) bool {
		name, ok := jobGet(r)
		if !ok || refused[name] {
			return false
		}
		refused[name] = true
		return true
	})
	defer undo()
	for range pids {
		cluster.Proxy().CutNextAfterResponse(func(r *http.Request) bool { _, ok := jobGet(r); return ok })
	}
	w := fateWorker(t, proxiedClient(t), ns, "cut-attach", Options{})
	stop := cutEvery(250 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	results := make([]Result, runs)
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			// Staggered, so that attaches meet the cuts at every step.
			time.Sleep(time.Duration(i) * 70 * time.Millisecond)
			results[i], errs[i] = w.Attach(ctx, pids[i], AttachOptions{})
		})
	}
	wg.Wait()
	cut := stop()
	after := cluster.Proxy().Stats()
	lost, refusals := after.CutRequests-before.CutRequests, after.RefusedRequests-before.RefusedRequests
	t.Logf("%d attaches while the proxy refused %d GETs, cut the answers of %d and cut %d connections", runs, refusals, lost, cut)
	if lost != runs || refusals != runs {
		t.Errorf("the proxy refused %d GETs and cut the answers of %d, want one each per Attach (%d)", refusals, lost, runs)
	}
	for i := range runs {
		want, code := jobwatch.Succeeded, 0
		if i%3 == 0 {
			want, code = jobwatch.Failed, 3
		}
		switch {
		case errs[i] != nil:
			t.Errorf("attach %s: %v", pids[i], errs[i])
		case results[i].Outcome != want || results[i].ExitCode != code:
			t.Errorf("attach %s: %s, exit code %d; want %s, %d", pids[i], results[i].Outcome, results[i].ExitCode, want, code)
		}
	}
	assertOneJobPerRun(t, jobsPerRun(t, ns), runs)
}

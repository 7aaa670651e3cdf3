package jobwatch

import (
	"context"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// End-to-end test of queue positions: the real Kueue v0.17 serves its
// visibility API (clustertest registers its APIService) and a Watcher
// reads it.

func TestE2EQueuePositionsMoveUpAsTheRunsAheadFinish(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "1"})
	client := clientFor(t, cluster.Config())
	w := debugWatcher(t, cluster.Config(), Options{QueuePositionInterval: time.Second})
	// Quota for one run; each holds it until the test lets it go, so the
	// positions move only when the test says.
	hold := map[string]string{tc.AnnotationDelay: "1h"}
	const runs = 4
	jobs := make([]*batchv1.Job, runs)
	chans := make([]<-chan waitCall, runs)
	recs := make([]*recorder, runs)
	for i := range runs {
		jobs[i] = createJob(t, client, ns, queuedRun(e2eQueue, hold))
		recs[i] = &recorder{}
		chans[i] = asyncWait(w, jobs[i], WaitOptions{PodStartTimeout: time.Minute, Events: recs[i]})
		if i == 0 {
			podOf(t, client, jobs[0], "Running", isRunning) // it holds the quota
		} else {
			afterWorkloadSecond(t, client, jobs[i])
		}
	}
	// reach waits until the last position reported for run i is want.
	reach := func(i, want int) {
		t.Helper()
		err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, e2eTimeout, true, func(context.Context) (bool, error) {
			ps := positionsOf(recs[i].all(), jobs[i].Name)
			return len(ps) > 0 && ps[len(ps)-1].InLocalQueue == want, nil
		})
		if err != nil {
			t.Fatalf("run %d never reached position %d: positions %+v", i, want, positionsOf(recs[i].all(), jobs[i].Name))
		}
	}
	for i := 1; i < runs; i++ {
		reach(i, i) // in the order of creation, behind run 0
	}
	results := make([]Result, runs)
	for done := range runs {
		setDelay(t, client, podOf(t, client, jobs[done], "Running", isRunning), "0s")
		c := <-chans[done]
		if c.err != nil {
			t.Fatalf("run %d: %v", done, c.err)
		}
		expect(t, c.res, Succeeded, 0)
		results[done] = c.res
		for i := done + 2; i < runs; i++ {
			reach(i, i-done-1) // run done+1 is admitted; the rest move up
		}
	}
	for i := 1; i < runs; i++ {
		ps := positionsOf(recs[i].all(), jobs[i].Name)
		t.Logf("run %d: positions %+v; Queue.Position %+v", i, ps, results[i].Queue.Position)
		var got, want []int
		for j, p := range ps {
			got = append(got, p.InLocalQueue)
			want = append(want, i-j)
			if p.InClusterQueue != p.InLocalQueue { // one LocalQueue feeds the ClusterQueue
				t.Errorf("run %d: position %+v in the ClusterQueue differs", i, p)
			}
		}
		if !slices.Equal(got, want) || len(got) != i {
			t.Errorf("run %d: positions in its LocalQueue %v, want %d down to 1", i, got, i)
		}
		if p := results[i].Queue.Position; p == nil || p.InLocalQueue != 1 || p.At.IsZero() {
			t.Errorf("run %d waited: Queue.Position %+v, want 1", i, p)
		}
		if slices.ContainsFunc(results[i].Queue.Events, func(e Event) bool { return e.Reason == ReasonQueuePosition }) {
			t.Errorf("run %d: a position in Queue.Events", i)
		}
	}
}

// afterWorkloadSecond waits until the Workload of job exists and a new
// second has begun since its creation: Kueue orders the Workloads of one
// priority by their creation time, in whole seconds, then by UID, so
// the next run's Workload is behind this one.
func afterWorkloadSecond(t *testing.T, client kubernetes.Interface, job *batchv1.Job) {
	t.Helper()
	dyn := dynamicFor(client)
	var created time.Time
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, e2eTimeout, true, func(ctx context.Context) (bool, error) {
		wls, err := dyn.Resource(workloadGVRs[0]).Namespace(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelJobUID + "=" + string(job.UID)})
		if err != nil || len(wls.Items) == 0 {
			return false, nil
		}
		created = wls.Items[0].GetCreationTimestamp().Time
		return true, nil
	})
	if err != nil {
		t.Fatalf("the Workload of %s: %v", job.Name, err)
	}
	time.Sleep(time.Until(created.Add(time.Second)))
}

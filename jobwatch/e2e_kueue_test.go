package jobwatch

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	tc "github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/manifest"
)

// End-to-end tests of following Kueue: the real Kueue v0.17 controller
// (clustertest's StartKueue) admits, holds and preempts the Jobs.

const e2eQueue = "queue"

// startKueue starts the shared cluster's Kueue and adds a queue of opts
// (its LocalQueue e2eQueue) in a new namespace, which it returns.
func startKueue(t *testing.T, opts tc.QueueOptions) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := cluster.StartKueue(ctx); err != nil {
		t.Fatalf("start Kueue: %v", err)
	}
	opts.Namespace, opts.LocalQueue = cluster.NewNamespace(t), e2eQueue
	if err := cluster.AddQueue(ctx, opts); err != nil {
		t.Fatal(err)
	}
	return opts.Namespace
}

// queuedRun is runJob labelled for queue, created suspended as
// manifest.Prepare creates it, its pod asking for one cpu (which the
// ClusterQueue's quota counts).
func queuedRun(queue string, annotations map[string]string, mods ...func(*batchv1.Job)) *batchv1.Job {
	return runJob(annotations, append([]func(*batchv1.Job){func(j *batchv1.Job) {
		j.Labels = map[string]string{manifest.LabelManagedBy: manifest.ManagedBy, manifest.LabelQueueName: queue}
		j.Spec.Suspend = new(true)
		j.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
	}}, mods...)...)
}

// debugWatcher returns a Watcher through conf whose Debug log is shown
// if the test fails.
func debugWatcher(t *testing.T, conf *rest.Config, opts Options) *Watcher {
	t.Helper()
	var logs safeBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := New(clientFor(t, conf), opts)
	t.Cleanup(func() {
		w.Close()
		if t.Failed() {
			t.Logf("the Watcher's log:\n%s", logs.String())
		}
	})
	return w
}

func TestE2EKueueQueuesFiveRunsInAQuotaForTwoAndAllSucceed(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "2"})
	client := clientFor(t, cluster.Config())
	w := newWatcher(t, cluster.Config())
	// Each run holds its cpu 12 s; three wait for one to end, longer
	// than their pod start timeout, which must not run while they wait.
	opts := WaitOptions{PodStartTimeout: 8 * time.Second, QueueTimeout: 2 * time.Minute}
	var chans []<-chan waitCall
	var recs []*recorder
	for range 5 {
		job := createJob(t, client, ns, queuedRun(e2eQueue, map[string]string{tc.AnnotationDelay: "12s"}))
		rec := &recorder{}
		o := opts
		o.Events = rec
		chans, recs = append(chans, asyncWait(w, job, o)), append(recs, rec)
	}
	var waited []time.Duration
	queued := 0
	for i, ch := range chans {
		c := <-ch
		if c.err != nil {
			t.Errorf("run %d: %v", i, c.err)
			continue
		}
		expect(t, c.res, Succeeded, 0)
		q := c.res.Queue
		if q == nil || q.LocalQueue != e2eQueue || q.ClusterQueue == "" || q.Workload == "" || q.AdmittedAt.IsZero() || q.Preemptions != 0 {
			t.Errorf("run %d: Queue %+v", i, q)
			continue
		}
		t.Logf("run %d: waited %v for ClusterQueue %s; Kueue's events %v", i, q.Waited, q.ClusterQueue, kueueReasons(q.Events))
		waited = append(waited, q.Waited)
		if slices.Contains(kueueReasons(q.Events), ReasonWaitingForQuota) {
			queued++
			if q.Waited < 8*time.Second {
				t.Errorf("run %d waited for quota %v, less than a run's 12 s hold (less a pod start)", i, q.Waited)
			}
		}
		if got := kueueReasons(recs[i].all()); !slices.Equal(got, kueueReasons(q.Events)) || got[len(got)-1] != ReasonAdmitted {
			t.Errorf("run %d: the sink got Kueue's events %v, the Result %v", i, got, kueueReasons(q.Events))
		}
	}
	if queued < 3 {
		t.Errorf("%d runs waited for quota, want at least 3 of 5 in a quota for 2 (waits %v)", queued, waited)
	}
}

func TestE2EKueuePreemptsALowPriorityRunWhichIsAdmittedAgainAndSucceeds(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "1", Preemption: "LowerPriority"})
	client := clientFor(t, cluster.Config())
	w := newWatcher(t, cluster.Config())
	low, high := ns+"-low", ns+"-high"
	for name, value := range map[string]int32{low: 100, high: 1000} {
		if err := cluster.AddWorkloadPriorityClass(t.Context(), name, value); err != nil {
			t.Fatal(err)
		}
	}
	withPriority := func(class string) func(*batchv1.Job) {
		return func(j *batchv1.Job) { j.Labels[manifest.LabelPriorityClass] = class }
	}
	lowJob := createJob(t, client, ns, queuedRun(e2eQueue, map[string]string{tc.AnnotationDelay: "1h"}, withPriority(low)))
	rec := &recorder{}
	lowCh := asyncWait(w, lowJob, WaitOptions{PodStartTimeout: 30 * time.Second, Events: rec})
	first := podOf(t, client, lowJob, "Running", isRunning)

	highJob := createJob(t, client, ns, queuedRun(e2eQueue, map[string]string{tc.AnnotationDelay: "2s"}, withPriority(high)))
	highCh := asyncWait(w, highJob, WaitOptions{PodStartTimeout: 30 * time.Second})
	c := <-highCh
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)

	// The low run is admitted again once the high one has ended; its
	// new pod is let finish.
	second := podOf(t, client, lowJob, "Running, a new pod", func(p *corev1.Pod) bool { return isRunning(p) && p.UID != first.UID })
	setDelay(t, client, second, "0s")
	c = <-lowCh
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)
	q := c.res.Queue
	t.Logf("the low run: %s in pod %s; Queue %+v", c.res.Outcome, c.res.Pod, q)
	if c.res.Pod != second.Name || q.Preemptions != 1 || q.Requeues != 1 || len(q.Evictions) != 1 {
		t.Fatalf("the low run: pod %s, Queue %+v", c.res.Pod, q)
	}
	if e := q.Evictions[0]; e.Reason != "Preempted" || e.Preemption != "InClusterQueue" || !strings.Contains(e.Message, "Preempted to accommodate") {
		t.Errorf("eviction %+v", e)
	}
	want := []string{ReasonAdmitted, ReasonPreempted, ReasonRequeued, ReasonAdmitted}
	got := kueueReasons(q.Events)
	if i := slices.Index(got, ReasonAdmitted); i < 0 || !slices.Equal(got[i:], want) {
		t.Errorf("Kueue's events %v, want them to end %v", got, want)
	}
	for _, e := range rec.all() {
		t.Logf("event %s/%s %s %s %q", e.Pod, e.Phase, e.Reason, e.KueueReason, e.Message)
	}
	jobs, err := client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 2 {
		t.Errorf("%d Jobs for two runs", len(jobs.Items))
	}
}

func TestE2EKueueAMissingLocalQueueIsNotAdmittedQuickly(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "1"})
	client := clientFor(t, cluster.Config())
	w := newWatcher(t, cluster.Config())
	job := createJob(t, client, ns, queuedRun("no-such-queue", nil))
	start := time.Now()
	res := waitJob(t, w, job, WaitOptions{PodStartTimeout: 10 * time.Minute})
	t.Logf("NotAdmitted after %v: %+v", time.Since(start), res.Diagnosis)
	if res.Outcome != NotAdmitted || res.Diagnosis == nil || res.Diagnosis.Cause != CauseQueueMissing ||
		res.Diagnosis.LocalQueue != "no-such-queue" || res.Diagnosis.Message != "LocalQueue no-such-queue doesn't exist" {
		t.Errorf("Result %+v, Diagnosis %+v", res, res.Diagnosis)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("NotAdmitted after %v", d)
	}
}

func TestE2EKueueRunsSurviveACutAndA410OfTheWorkloadStream(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "1"})
	client := clientFor(t, cluster.Config())
	rec := &tally{}
	w := debugWatcher(t, cluster.ProxyConfig(), Options{Metrics: rec})
	var chans []<-chan waitCall
	for range 3 {
		job := createJob(t, client, ns, queuedRun(e2eQueue, map[string]string{tc.AnnotationDelay: "3s"}))
		chans = append(chans, asyncWait(w, job, WaitOptions{PodStartTimeout: 5 * time.Second, QueueTimeout: 2 * time.Minute}))
	}
	time.Sleep(2 * time.Second)
	cluster.Proxy().CutAll()
	time.Sleep(2 * time.Second)
	for i := range 20 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i)}}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cluster.CompactEtcd(t.Context()); err != nil {
		t.Fatal(err)
	}
	cluster.Proxy().CutAll()
	for i, ch := range chans {
		c := <-ch
		if c.err != nil {
			t.Errorf("run %d: %v", i, c.err)
			continue
		}
		expect(t, c.res, Succeeded, 0)
		if q := c.res.Queue; q == nil || q.AdmittedAt.IsZero() || q.ClusterQueue == "" {
			t.Errorf("run %d: Queue %+v", i, q)
		} else {
			t.Logf("run %d waited %v; Kueue's events %v", i, q.Waited, kueueReasons(q.Events))
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	t.Logf("Workload stream: %d watch restarts, relists %v", rec.restarts["workloads"], rec.relists["workloads"])
	if !slices.Contains(rec.relists["workloads"], true) {
		t.Errorf("the Workload stream never relisted after 410 Gone (relists %v)", rec.relists["workloads"])
	}
}

func TestE2EKueueARunNotAdmittedWithinItsQueueTimeoutIsNotAdmitted(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "1"})
	client := clientFor(t, cluster.Config())
	w := newWatcher(t, cluster.Config())
	holder := createJob(t, client, ns, queuedRun(e2eQueue, map[string]string{tc.AnnotationDelay: "1h"}))
	podOf(t, client, holder, "Running", isRunning)
	job := createJob(t, client, ns, queuedRun(e2eQueue, nil))
	res := waitJob(t, w, job, WaitOptions{QueueTimeout: 5 * time.Second, PodStartTimeout: time.Second})
	d := res.Diagnosis
	t.Logf("%s: %+v", res.Outcome, d)
	if res.Outcome != NotAdmitted || d == nil || d.Cause != CauseQuotaWait || d.LocalQueue != e2eQueue || d.Reason != "Pending" ||
		!strings.Contains(d.Message, "insufficient") {
		t.Errorf("Result %+v, Diagnosis %+v", res, d)
	}
	if q := res.Queue; q == nil || q.Waited < 5*time.Second || !q.AdmittedAt.IsZero() {
		t.Errorf("Queue %+v", q)
	}
}

func TestE2EKueueADeactivatedWorkloadEndsItsRun(t *testing.T) {
	ns := startKueue(t, tc.QueueOptions{CPU: "1"})
	client := clientFor(t, cluster.Config())
	w := newWatcher(t, cluster.Config())
	job := createJob(t, client, ns, queuedRun(e2eQueue, map[string]string{tc.AnnotationDelay: "1h"}))
	ch := asyncWait(w, job, WaitOptions{})
	podOf(t, client, job, "Running", isRunning)
	dyn := dynamicFor(client)
	wls, err := dyn.Resource(workloadGVRs[0]).Namespace(ns).List(t.Context(), metav1.ListOptions{LabelSelector: labelJobUID + "=" + string(job.UID)})
	if err != nil || len(wls.Items) != 1 {
		t.Fatalf("the Workload of the Job: %v, %v", wls, err)
	}
	if _, err := dyn.Resource(workloadGVRs[0]).Namespace(ns).Patch(t.Context(), wls.Items[0].GetName(), types.MergePatchType,
		[]byte(`{"spec":{"active":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	c := <-ch
	t.Logf("%s: %s %q", c.res.Outcome, c.res.Reason, c.res.Message)
	if c.err != nil || c.res.Outcome != Deactivated || !strings.HasPrefix(c.res.Reason, "Deactivated") || c.res.Outcome.Fault() != FaultInfrastructure {
		t.Errorf("Wait = %+v, %v", c.res, c.err)
	}
}

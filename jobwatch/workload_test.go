package jobwatch

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

// Tests of the Workload stream: one per namespace, opened only when
// needed, its faults (Kueue not installed, a cut watch, 410 Gone), and
// the dynamic client it uses by default.

// syncBuffer is a log destination safe for the informers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// workloadLists counts the lists of Workloads made through dyn.
func workloadLists(f *kueueFake) int {
	n := 0
	for _, a := range f.dyn.Actions() {
		if a.Matches("list", "workloads") {
			n++
		}
	}
	return n
}

func TestWithoutKueueInstalledAQueuedJobWaitsForItsQueueTimeoutWithoutAHotLoop(t *testing.T) {
	f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true))})
	logs := &syncBuffer{}
	f.w.logger = slog.New(slog.NewTextHandler(logs, nil))
	f.dyn.PrependReactor("list", "workloads", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewNotFound(schema.GroupResource{Group: "kueue.x-k8s.io", Resource: "workloads"}, "")
	})
	ch := startWait(f.w, ref1, WaitOptions{QueueTimeout: time.Minute})
	f.queued(t)
	time.Sleep(3 * time.Second) // the reflector's back-off, on the real clock
	// Each attempt lists both versions; the back-off starts at 0.8 s and
	// doubles (with jitter): at most four attempts in 3 s.
	n := workloadLists(f)
	t.Logf("%d lists of Workloads in 3 s without Kueue", n)
	if n < 2 || n > 8 {
		t.Errorf("%d lists of Workloads in 3 s, want 2 to 8", n)
	}
	stepWhen(t, f.w, f.clk, 1, time.Minute)
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != NotAdmitted {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if d := c.res.Diagnosis; d == nil || d.Cause != CauseNoWorkload || d.LocalQueue != testQueue || !strings.Contains(d.Message, "not served") {
		t.Errorf("Diagnosis %+v", d)
	}
	if n := strings.Count(logs.String(), "Workload API is not served"); n != 1 {
		t.Errorf("said %d times that the API is not served, want once:\n%s", n, logs.String())
	}
}

func TestWithoutADynamicClientAQueuedJobIsFollowedAsSuspended(t *testing.T) {
	w, client, clk := newFakeWatcher(t, queuedJob(suspendedJob(true)))
	if w.dyn != nil {
		t.Fatal("a Watcher on a fake clientset has a dynamic client")
	}
	rec := &recorder{}
	ch := startWait(w, ref1, WaitOptions{PodStartTimeout: 5 * time.Second, QueueTimeout: time.Hour, Events: rec})
	eventually(t, "the Queued event", func() bool { return len(rec.all()) == 1 })
	updateJob(t, client, resumedJob(8))
	stepWhen(t, w, clk, 2, 5*time.Second) // the pod start timeout, from the resume
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != NeverStarted || c.res.Queue == nil || c.res.Queue.Workload != "" || c.res.Queue.LocalQueue != testQueue {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if q := c.res.Queue; q.Waited != 8*time.Second || !q.AdmittedAt.Equal(at(8).Time) { // resumed at 8 s
		t.Errorf("Queue %+v", q)
	}
	// At the queue timeout, the Diagnosis says Kueue is not followed.
	w2, _, clk2 := newFakeWatcher(t, queuedJob(suspendedJob(true)))
	ch = startWait(w2, ref1, WaitOptions{QueueTimeout: time.Minute})
	stepWhen(t, w2, clk2, 1, time.Minute)
	c = await(t, ch)
	if d := c.res.Diagnosis; c.res.Outcome != NotAdmitted || d == nil || d.Cause != CauseNoWorkload || !strings.Contains(d.Message, "Options.Dynamic") {
		t.Errorf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestOneWorkloadStreamPerNamespaceOpenedOnlyForQueuedJobs(t *testing.T) {
	plain := testJob(func(j *batchv1.Job) { j.Name, j.UID = "plain", "plain-uid" })
	second := queuedJob(suspendedJob(true), func(j *batchv1.Job) { j.Name, j.UID = "run-2", "job-2-uid" })
	f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true)), second, plain}, testWorkload(pendingWL(1)))
	ch := startWait(f.w, JobRef{Namespace: "ns", Name: "plain"}, WaitOptions{Deadline: time.Hour, PodStartTimeout: -1})
	time.Sleep(200 * time.Millisecond)
	if n := len(f.dyn.Actions()); n != 0 {
		t.Errorf("a Wait on a Job without a queue made %d requests of Workloads", n)
	}
	ch1 := startWait(f.w, ref1, WaitOptions{})
	ch2 := startWait(f.w, JobRef{Namespace: "ns", Name: "run-2"}, WaitOptions{})
	eventually(t, "the Workload stream", func() bool { return workloadLists(f) > 0 })
	time.Sleep(200 * time.Millisecond)
	var lists, watches int
	for _, a := range f.dyn.Actions() {
		switch {
		case a.Matches("list", "workloads"):
			lists++
		case a.Matches("watch", "workloads"):
			watches++
		}
	}
	if lists != 1 || watches != 1 {
		t.Errorf("two queued runs made %d lists and %d watches of Workloads, want one of each", lists, watches)
	}
	f.clk.Step(time.Hour)
	if c := await(t, ch); c.res.Outcome != TimedOut || c.res.Queue != nil {
		t.Errorf("the plain Job: %+v", c.res)
	}
	f.w.Close()
	for _, c := range []<-chan waitCall{ch1, ch2} {
		if c := await(t, c); c.err == nil {
			t.Errorf("a Wait survived Close: %+v", c.res)
		}
	}
}

func TestAnOlderKueueIsReadThroughV1beta1(t *testing.T) {
	f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true))},
		testWorkload(func(u *unstructured.Unstructured) { u.SetAPIVersion("kueue.x-k8s.io/v1beta1") },
			wlCond(condQuotaReserved, metav1.ConditionFalse, "Inadmissible", "LocalQueue team-a doesn't exist", 1)))
	f.dyn.PrependReactor("list", "workloads", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetResource().Version == "v1beta2" {
			return true, nil, apierrors.NewNotFound(a.GetResource().GroupResource(), "")
		}
		return false, nil, nil
	})
	res, err := f.w.Wait(t.Context(), ref1, WaitOptions{})
	if err != nil || res.Outcome != NotAdmitted || res.Diagnosis.Cause != CauseQueueMissing {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
}

// cutWatches makes every watch of Workloads a FakeWatcher the test
// drives, sent on the channel as it is opened.
func cutWatches(f *kueueFake) <-chan *watch.FakeWatcher {
	ch := make(chan *watch.FakeWatcher, 10)
	f.dyn.PrependWatchReactor("workloads", func(k8stesting.Action) (bool, watch.Interface, error) {
		fw := watch.NewFake()
		ch <- fw
		return true, fw, nil
	})
	return ch
}

func TestAWorkloadStreamCutOrExpiredMidRunLeavesTheOutcomeRight(t *testing.T) {
	for _, fault := range []string{"cut", "410 Gone"} {
		t.Run(fault, func(t *testing.T) {
			f := newKueueFake(t, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
			watches := cutWatches(f)
			rec := &recorder{}
			ch := startWait(f.w, ref1, WaitOptions{QueueTimeout: time.Hour, Events: rec})
			first := <-watches
			f.queued(t)
			// While the stream is down, Kueue admits the Workload: the
			// informer learns it from the watch that follows (a cut) or
			// from a relist (410 Gone).
			f.setWorkload(t, testWorkload(pendingWL(1), admittedWL(7)))
			if fault == "cut" {
				first.Stop()
				second := <-watches
				wl, err := f.dyn.Resource(workloadGVRs[0]).Namespace("ns").Get(t.Context(), "job-run-1-1a2b3", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				second.Modify(wl)
			} else {
				first.Error(&apierrors.NewResourceExpired("too old resource version").ErrStatus)
				<-watches // the relist is done
			}
			f.seen(t, condAdmitted, metav1.ConditionTrue)
			updateJob(t, f.cs, resumedJob(8))
			createPod(t, f, testPod("p1", 8, running, exited("main", 0, "Completed")))
			c := await(t, ch)
			if c.err != nil || c.res.Outcome != Succeeded || c.res.Queue.Waited != 7*time.Second || c.res.Queue.ClusterQueue != "cq" {
				t.Fatalf("Wait = %+v, %v (Queue %+v)", c.res, c.err, c.res.Queue)
			}
			want := []string{ReasonWaitingForQuota, ReasonAdmitted}
			if got := kueueReasons(rec.all()); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("Kueue's events %v, want %v", got, want)
			}
		})
	}
}

func TestTheDefaultDynamicClientSharesTheClientsetsConnection(t *testing.T) {
	var auth atomic.Value
	var path atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		path.Store(r.URL.Path)
		rw.Header().Set("Content-Type", "application/json")
		_, _ = rw.Write([]byte(`{"apiVersion":"kueue.x-k8s.io/v1beta2","kind":"WorkloadList","metadata":{"resourceVersion":"1"},"items":[]}`))
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL + "/prefix", BearerToken: "sesame",
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamicFor(cs)
	if dyn == nil {
		t.Fatal("no dynamic client for a Clientset")
	}
	if _, err := dyn.Resource(workloadGVRs[0]).Namespace("ns").List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := path.Load(); got != "/prefix/apis/kueue.x-k8s.io/v1beta2/namespaces/ns/workloads" {
		t.Errorf("path %v", got)
	}
	if got := auth.Load(); got != "Bearer sesame" {
		t.Errorf("Authorization %q, want the clientset's", got)
	}
	if dynamicFor(fake.NewClientset()) != nil {
		t.Error("a dynamic client for a fake clientset")
	}
}

func TestParseWorkloadIgnoresWhatIsMissingOrOdd(t *testing.T) {
	odd := []map[string]any{
		{},
		{"spec": "not a map", "status": 3},
		{"spec": map[string]any{"active": "no"}, "status": map[string]any{"conditions": "none"}},
		{"status": map[string]any{"conditions": []any{"x", 3, map[string]any{"type": 4}, map[string]any{"type": "Admitted", "lastTransitionTime": "yesterday"}}}},
		{"status": map[string]any{"admission": []any{}, "schedulingStats": map[string]any{"evictions": []any{map[string]any{"reason": "Preempted", "count": "2"}, 7}}}},
		{"metadata": map[string]any{"labels": "x", "ownerReferences": []any{"y"}, "creationTimestamp": 5}},
	}
	for i, o := range odd {
		wl := parseWorkload(&unstructured.Unstructured{Object: o})
		if !wl.Active || wl.ClusterQueue != "" || wl.PreemptedCount != 0 || wl.jobUID() != "" {
			t.Errorf("case %d: %+v", i, wl)
		}
	}
	wl := parseWorkload(testWorkload(preemptedWL(10), readmittedWL(20), func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, false, "spec", "active")
	}))
	if wl.Active || wl.ClusterQueue != "cq" || wl.PreemptedCount != 1 || wl.jobUID() != "job-uid" || wl.QueueName != testQueue ||
		!wl.is(condAdmitted) || wl.is(condEvicted) || wl.Conditions[condEvicted].Status != metav1.ConditionFalse || !wl.Conditions[condAdmitted].Time.Equal(at(20).Time) {
		t.Errorf("parsed %+v", wl)
	}
	if again, _ := trimWorkload(wl); again != wl {
		t.Error("the transform is not idempotent")
	}
}

package jobwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	dynfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubeworker/kubeworker/manifest"
)

// Tests of queue positions: the Job and its pods come from the fake
// clientset, its Workload from the fake dynamic client, and Kueue's
// visibility API from an httptest server behind a real dynamic client
// (a fake cannot serve a subresource of an aggregated API).

// visServer plays Kueue's visibility API.
type visServer struct {
	srv *httptest.Server

	mu     sync.Mutex
	paths  []string // the paths asked, in order
	code   int
	ctype  string
	body   string
	served string // if set, only this version answers; the other is 404
	forbid string // if set, paths with it are answered 403
}

func newVisServer(t *testing.T) *visServer {
	s := &visServer{code: http.StatusOK, ctype: "application/json", body: summary()}
	s.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		code, ctype, body := s.code, s.ctype, s.body
		if s.served != "" && !strings.Contains(r.URL.Path, "/"+s.served+"/") {
			code, ctype, body = http.StatusNotFound, "text/plain", "404 page not found"
		}
		if s.forbid != "" && strings.Contains(r.URL.Path, s.forbid) {
			code, ctype, body = http.StatusForbidden, "application/json",
				`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,"message":"localqueues.visibility.kueue.x-k8s.io \"team-a\" is forbidden"}`
		}
		s.mu.Unlock()
		rw.Header().Set("Content-Type", ctype)
		rw.WriteHeader(code)
		_, _ = rw.Write([]byte(body))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// answer sets what every request gets from now on.
func (s *visServer) answer(code int, ctype, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.code, s.ctype, s.body = code, ctype, body
}

// answerJSON answers 200 with body.
func (s *visServer) answerJSON(body string) { s.answer(http.StatusOK, "application/json", body) }

func (s *visServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.paths)
}

// pending is one item of a PendingWorkloadsSummary; 0-based positions.
type pending struct {
	name       string
	job        types.UID
	inLQ, inCQ int
}

// summary is a PendingWorkloadsSummary as Kueue v0.17 answers it.
func summary(items ...pending) string {
	var out []any
	for _, p := range items {
		meta := map[string]any{"name": p.name, "namespace": "ns", "creationTimestamp": at(0).UTC().Format(time.RFC3339)}
		if p.job != "" {
			meta["ownerReferences"] = []any{map[string]any{"apiVersion": "batch/v1", "kind": "Job", "name": "x", "uid": string(p.job)}}
		}
		out = append(out, map[string]any{"metadata": meta, "priority": 0, "localQueueName": testQueue,
			"positionInLocalQueue": p.inLQ, "positionInClusterQueue": p.inCQ})
	}
	b, _ := json.Marshal(map[string]any{"kind": "PendingWorkloadsSummary", "apiVersion": "visibility.kueue.x-k8s.io/v1beta2",
		"metadata": map[string]any{"creationTimestamp": nil}, "items": out})
	return string(b)
}

const visPath = "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/ns/localqueues/team-a/pendingworkloads"

// splitDynamic serves Kueue's visibility API from vis, the rest (the
// Workloads) from the embedded client.
type splitDynamic struct {
	dynamic.Interface
	vis dynamic.Interface
}

// IsWatchListSemanticsUnSupported passes on the fake's answer: it
// cannot stream a list's initial events.
func (s splitDynamic) IsWatchListSemanticsUnSupported() bool { return true }

func (s splitDynamic) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	if gvr.Group == visibilityGVRs[0].Group {
		return s.vis.Resource(gvr)
	}
	return s.Interface.Resource(gvr)
}

// newVisibilityFake is newKueueFake with the visibility API of srv and
// opts; its Debug log is in the returned buffer.
func newVisibilityFake(t *testing.T, srv *visServer, opts Options, objs []runtime.Object, workloads ...runtime.Object) (*kueueFake, *syncBuffer) {
	t.Helper()
	f := &kueueFake{cs: fake.NewClientset(objs...), clk: testingclock.NewFakeClock(t0), rec: &kueueTally{}}
	f.dyn = dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		workloadGVRs[0]: "WorkloadList", workloadGVRs[1]: "WorkloadList",
	}, workloads...)
	vis, err := dynamic.NewForConfig(&rest.Config{Host: srv.srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	opts.Clock, opts.Dynamic, opts.Metrics = f.clk, splitDynamic{f.dyn, vis}, f.rec
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.w = New(f.cs, opts)
	t.Cleanup(f.w.Close)
	return f, logs
}

// waitingOpts has no timer of its own while the Job is queued, so the
// fake clock's only timer is the position reader's.
var waitingOpts = WaitOptions{PodStartTimeout: -1}

// nextRead waits until the position reader sleeps (the clock's only
// timer), steps the clock by d, and waits for the request count to
// reach want.
func nextRead(t *testing.T, f *kueueFake, srv *visServer, d time.Duration, want int) {
	t.Helper()
	eventually(t, "the position reader asleep", func() bool { return f.clk.Waiters() == 1 })
	f.clk.Step(d)
	eventually(t, fmt.Sprintf("%d requests of positions", want), func() bool { return len(srv.requests()) >= want })
	if n := len(srv.requests()); n != want {
		t.Fatalf("%d requests of positions, want %d", n, want)
	}
}

// positionsOf returns the positions of the ReasonQueuePosition events of
// the Job named job.
func positionsOf(events []Event, job string) []QueuePosition {
	var out []QueuePosition
	for _, e := range events {
		if e.Reason == ReasonQueuePosition && e.Job == job {
			out = append(out, *e.Position)
		}
	}
	return out
}

// admit makes Kueue admit the Job of testWorkload and its pod succeed.
func admit(t *testing.T, f *kueueFake, sec int) {
	t.Helper()
	f.setWorkload(t, testWorkload(pendingWL(1), admittedWL(sec)))
	updateJob(t, f.cs, resumedJob(sec))
	createPod(t, f, testPod("p1", sec, running, exited("main", 0, "Completed")))
}

// reader returns the Watcher's position reader's state.
func reader(f *kueueFake) (running bool, queues int) {
	p := f.w.pos
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running, len(p.queues)
}

func TestAQueuePositionIsReportedWhenFirstKnownAndWhenItChanges(t *testing.T) {
	srv := newVisServer(t)
	srv.answerJSON(summary(pending{"other", "other-uid", 0, 2}, pending{"job-run-1-1a2b3", "job-uid", 1, 3}))
	f, _ := newVisibilityFake(t, srv, Options{}, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
	rec := &recorder{}
	opts := waitingOpts
	opts.Events = rec
	ch := startWait(f.w, ref1, opts)
	eventually(t, "the first position", func() bool { return len(positionsOf(rec.all(), "run-1")) == 1 })
	if got := positionsOf(rec.all(), "run-1")[0]; got != (QueuePosition{InLocalQueue: 2, InClusterQueue: 4, At: t0}) {
		t.Errorf("first position %+v", got)
	}

	// A read with the same position reports nothing; one that moves it does.
	nextRead(t, f, srv, DefaultQueuePositionInterval, 2)
	srv.answerJSON(summary(pending{"job-run-1-1a2b3", "job-uid", 0, 0}))
	nextRead(t, f, srv, DefaultQueuePositionInterval, 3)
	eventually(t, "the second position", func() bool { return len(positionsOf(rec.all(), "run-1")) == 2 })

	admit(t, f, 20)
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Succeeded {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	last := QueuePosition{InLocalQueue: 1, InClusterQueue: 1, At: t0.Add(2 * DefaultQueuePositionInterval)}
	if got := positionsOf(rec.all(), "run-1"); len(got) != 2 || got[1] != last {
		t.Errorf("positions reported %+v, want 2 then %+v", got, last)
	}
	if p := c.res.Queue.Position; p == nil || *p != last {
		t.Errorf("Queue.Position %+v, want %+v", p, last)
	}
	var e Event
	for _, ev := range rec.all() {
		if ev.Reason == ReasonQueuePosition {
			e = ev
		}
	}
	if e.Workload != "" || e.Pod != "" || e.Message != "position 1 in LocalQueue team-a, 1 in its ClusterQueue" || !e.Time.Equal(last.At) || e.ID == "" {
		t.Errorf("the last position event %+v", e)
	}
	if got := kueueReasons(c.res.Queue.Events); !slices.Equal(got, []string{ReasonWaitingForQuota, ReasonAdmitted}) {
		t.Errorf("Queue.Events %v: positions are not Kueue's condition events", got)
	}
	all := rec.all()
	for i := 1; i < len(all); i++ {
		if all[i].PrevID != all[i-1].ID {
			t.Errorf("event %d (%s) does not link to the one before", i, all[i].Reason)
		}
	}
	for _, p := range srv.requests() {
		if p != visPath {
			t.Errorf("asked %s, want %s", p, visPath)
		}
	}
}

func TestRunsWaitingInOneLocalQueueShareOneRequestPerInterval(t *testing.T) {
	srv := newVisServer(t)
	uids := []types.UID{"job-uid", "uid-2", "uid-3"}
	answer := func(ahead int) string {
		var items []pending
		for i := range ahead {
			items = append(items, pending{fmt.Sprintf("other-%d", i), "", i, i})
		}
		for i, uid := range uids {
			items = append(items, pending{"wl-" + string(uid), uid, ahead + i, ahead + i})
		}
		return summary(items...)
	}
	srv.answerJSON(answer(0))
	var objs []runtime.Object
	for i, uid := range uids {
		objs = append(objs, queuedJob(suspendedJob(true), func(j *batchv1.Job) { j.Name, j.UID = fmt.Sprintf("run-%d", i+1), uid }))
	}
	f, _ := newVisibilityFake(t, srv, Options{}, objs)
	rec := &recorder{}
	opts := waitingOpts
	opts.Events = rec
	for i := range uids {
		startWait(f.w, JobRef{Namespace: "ns", Name: fmt.Sprintf("run-%d", i+1)}, opts)
	}
	seen := func(n int) func() bool {
		return func() bool {
			for i := range uids {
				if len(positionsOf(rec.all(), fmt.Sprintf("run-%d", i+1))) != n {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "a position for each run", seen(1))
	if n := len(srv.requests()); n != 1 {
		t.Errorf("three runs in one queue made %d requests, want 1", n)
	}
	srv.answerJSON(answer(2))
	nextRead(t, f, srv, DefaultQueuePositionInterval, 2)
	eventually(t, "a second position for each run", seen(2))
	for i := range uids {
		got := positionsOf(rec.all(), fmt.Sprintf("run-%d", i+1))
		if got[0].InLocalQueue != i+1 || got[1].InLocalQueue != i+3 {
			t.Errorf("run-%d: positions %+v", i+1, got)
		}
	}
	if n := len(srv.requests()); n != 2 {
		t.Errorf("%d requests in two intervals, want 2", n)
	}
}

func TestWhereTheVisibilityAPIIsNotServedThePositionStaysNilAndIsAskedRarely(t *testing.T) {
	notFound := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}`
	unavailable := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"service unavailable","reason":"ServiceUnavailable","code":503}`
	tests := []struct {
		name        string
		code        int
		ctype, body string
		perTry      int // requests per try: a 404 tries both versions
	}{
		{"404 from the API server", http.StatusNotFound, "application/json", notFound, 2},
		{"404 as plain text", http.StatusNotFound, "text/plain", "404 page not found", 2},
		{"503 from the aggregator", http.StatusServiceUnavailable, "text/plain", "service unavailable\n", 1},
		{"503 as a Status", http.StatusServiceUnavailable, "application/json", unavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newVisServer(t)
			srv.answer(tt.code, tt.ctype, tt.body)
			f, logs := newVisibilityFake(t, srv, Options{}, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
			rec := &recorder{}
			opts := waitingOpts
			opts.Events = rec
			ch := startWait(f.w, ref1, opts)
			eventually(t, "the first try", func() bool { return len(srv.requests()) == tt.perTry })
			eventually(t, "the position reader asleep", func() bool { return f.clk.Waiters() == 1 })
			for range 10 { // intervals pass: no request
				f.clk.Step(DefaultQueuePositionInterval)
			}
			if n := f.clk.Waiters(); n != 1 {
				t.Fatalf("the position reader woke within %v of a not-served answer", 10*DefaultQueuePositionInterval)
			}
			nextRead(t, f, srv, notServedRetry-10*DefaultQueuePositionInterval, 2*tt.perTry)
			eventually(t, "the position reader asleep", func() bool { return f.clk.Waiters() == 1 })
			admit(t, f, 200)
			c := await(t, ch)
			if c.err != nil || c.res.Outcome != Succeeded || c.res.Queue.Position != nil {
				t.Fatalf("Wait = %+v, %v (Queue %+v)", c.res, c.err, c.res.Queue)
			}
			if got := positionsOf(rec.all(), "run-1"); len(got) != 0 {
				t.Errorf("positions reported %+v", got)
			}
			log := logs.String()
			if n := strings.Count(log, "visibility API is not served"); n != 1 {
				t.Errorf("said %d times that the API is not served, want once:\n%s", n, log)
			}
			if strings.Contains(log, "level=WARN") || strings.Contains(log, "level=ERROR") {
				t.Errorf("logged above Debug:\n%s", log)
			}
		})
	}
}

func TestARefusedQueueIsAskedRarelyAndTheOthersAsUsual(t *testing.T) {
	srv := newVisServer(t)
	srv.forbid = "/localqueues/team-a/"
	srv.answerJSON(summary(pending{"wl-b", "uid-b", 0, 0}))
	other := queuedJob(suspendedJob(true), func(j *batchv1.Job) {
		j.Name, j.UID = "run-b", "uid-b"
		j.Labels[manifest.LabelQueueName] = "team-b"
	})
	f, logs := newVisibilityFake(t, srv, Options{}, []runtime.Object{queuedJob(suspendedJob(true)), other})
	rec := &recorder{}
	opts := waitingOpts
	opts.Events = rec
	chA := startWait(f.w, ref1, opts)
	eventually(t, "the refusal", func() bool { return len(srv.requests()) == 1 })
	startWait(f.w, JobRef{Namespace: "ns", Name: "run-b"}, opts)
	eventually(t, "run-b's position", func() bool { return len(positionsOf(rec.all(), "run-b")) == 1 })
	count := func(lq string) (n int) {
		for _, p := range srv.requests() {
			if strings.Contains(p, "/localqueues/"+lq+"/") {
				n++
			}
		}
		return n
	}
	for i := range 3 {
		nextRead(t, f, srv, DefaultQueuePositionInterval, 3+i)
	}
	if a, b := count("team-a"), count("team-b"); a != 1 || b != 4 {
		t.Errorf("requests: %d of the refused queue, %d of the other; want 1 and 4", a, b)
	}
	f.w.Close()
	if c := await(t, chA); c.res.Queue == nil || c.res.Queue.Position != nil {
		t.Errorf("the refused queue's run: Queue %+v", c.res.Queue)
	}
	if n := strings.Count(logs.String(), "level=INFO msg=\"jobwatch: cannot read queue positions"); n != 1 {
		t.Errorf("said %d times that positions are refused, want once at Info:\n%s", n, logs.String())
	}
}

func TestAnOlderKueueServesPositionsThroughV1beta1(t *testing.T) {
	srv := newVisServer(t)
	srv.served = "v1beta1"
	srv.answerJSON(summary(pending{"job-run-1-1a2b3", "job-uid", 0, 0}))
	f, _ := newVisibilityFake(t, srv, Options{}, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
	rec := &recorder{}
	opts := waitingOpts
	opts.Events = rec
	startWait(f.w, ref1, opts)
	eventually(t, "the position", func() bool { return len(positionsOf(rec.all(), "run-1")) == 1 })
	nextRead(t, f, srv, DefaultQueuePositionInterval, 3) // v1beta2, v1beta1, then v1beta1 only
	if got := srv.requests()[2]; !strings.Contains(got, "/v1beta1/") {
		t.Errorf("the second read asked %s", got)
	}
}

func TestReadingStopsWhenNoRunWaitsAndStartsAgainWhenOneDoes(t *testing.T) {
	srv := newVisServer(t)
	srv.answerJSON(summary(pending{"job-run-1-1a2b3", "job-uid", 0, 0}))
	f, _ := newVisibilityFake(t, srv, Options{}, []runtime.Object{resumedJob(5), testPod("p1", 5, running)}, testWorkload(pendingWL(1), admittedWL(5)))
	rec := &recorder{}
	opts := waitingOpts
	opts.Events = rec
	startWait(f.w, ref1, opts)
	f.seen(t, condAdmitted, metav1.ConditionTrue)
	if running, _ := reader(f); running || len(srv.requests()) != 0 {
		t.Fatalf("an admitted run started reading positions (%d requests)", len(srv.requests()))
	}

	// Preempted: it waits again, and its position is read at once.
	f.setWorkload(t, testWorkload(admittedWL(5), preemptedWL(10)))
	updateJob(t, f.cs, queuedJob(suspendedAgain(11)))
	if err := f.cs.CoreV1().Pods("ns").Delete(t.Context(), "p1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a position", func() bool { return len(positionsOf(rec.all(), "run-1")) == 1 })
	nextRead(t, f, srv, DefaultQueuePositionInterval, 2)

	// Admitted again: the reader ends, and stepping the clock asks nothing.
	f.setWorkload(t, testWorkload(preemptedWL(10), requeuedWL(12), readmittedWL(20)))
	updateJob(t, f.cs, resumedJob(21))
	createPod(t, f, testPod("p2", 21, running))
	eventually(t, "the reader to end", func() bool { running, queues := reader(f); return !running && queues == 0 })
	f.clk.Step(time.Hour)
	if n := len(srv.requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestOddAnswersSetNoPositionAndAreAskedAgainAtTheNextInterval(t *testing.T) {
	srv := newVisServer(t)
	srv.answer(http.StatusOK, "application/json", "not json")
	f, logs := newVisibilityFake(t, srv, Options{}, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
	rec := &recorder{}
	opts := waitingOpts
	opts.Events = rec
	ch := startWait(f.w, ref1, opts)
	eventually(t, "the first request", func() bool { return len(srv.requests()) == 1 })
	odd := []struct {
		code int
		body string
	}{
		{http.StatusOK, `{"items":[]}`}, // no kind: the client refuses it
		{http.StatusOK, `{"kind":"PendingWorkloadsSummary","items":"x"}`},
		{http.StatusOK, `{"kind":"PendingWorkloadsSummary","items":[7,null,{"metadata":{"name":"job-run-1-1a2b3"},"positionInLocalQueue":"1","positionInClusterQueue":0},` +
			`{"metadata":{"name":"job-run-1-1a2b3"},"positionInLocalQueue":-1,"positionInClusterQueue":0},` +
			`{"metadata":{"name":"job-run-1-1a2b3"},"positionInLocalQueue":1.5,"positionInClusterQueue":0},` +
			`{"metadata":"x","positionInLocalQueue":0,"positionInClusterQueue":0}]}`},
		{http.StatusInternalServerError, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500}`},
		{http.StatusTooManyRequests, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429}`},
	}
	for i, o := range odd {
		srv.answer(o.code, "application/json", o.body)
		nextRead(t, f, srv, DefaultQueuePositionInterval, i+2)
	}
	srv.answerJSON(summary(pending{"job-run-1-1a2b3", "", 2, 5}))
	nextRead(t, f, srv, DefaultQueuePositionInterval, len(odd)+2)
	eventually(t, "the position", func() bool { return len(positionsOf(rec.all(), "run-1")) == 1 })
	if got := positionsOf(rec.all(), "run-1")[0]; got.InLocalQueue != 3 || got.InClusterQueue != 6 {
		t.Errorf("position %+v", got)
	}
	admit(t, f, 100)
	if c := await(t, ch); c.err != nil || c.res.Outcome != Succeeded || c.res.Queue.Position == nil {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("logged at Warn:\n%s", logs.String())
	}
}

func TestNoPositionIsReadWithANegativeInterval(t *testing.T) {
	srv := newVisServer(t)
	f, _ := newVisibilityFake(t, srv, Options{QueuePositionInterval: -1}, []runtime.Object{queuedJob(suspendedJob(true))}, testWorkload(pendingWL(1)))
	if f.w.pos != nil {
		t.Fatal("positions are read")
	}
	startWait(f.w, ref1, waitingOpts)
	f.queued(t)
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests", n)
	}
}

func TestClassifyVisibility(t *testing.T) {
	gr := schema.GroupResource{Group: "visibility.kueue.x-k8s.io", Resource: "localqueues"}
	tests := []struct {
		name string
		err  error
		want visibilityFailure
	}{
		{"Kueue's own 404 for an unknown LocalQueue", apierrors.NewNotFound(schema.GroupResource{Group: "visibility.kueue.x-k8s.io", Resource: "localqueue"}, "q"), failNoQueue},
		{"the same, wrapped", fmt.Errorf("read: %w", apierrors.NewNotFound(schema.GroupResource{Group: "visibility.kueue.x-k8s.io", Resource: "localqueue"}, "q")), failNoQueue},
		{"the API server's 404", apierrors.NewGenericServerResponse(http.StatusNotFound, "get", gr, "q", "", 0, false), failNotServed},
		{"a 404 without details", apierrors.NewNotFound(schema.GroupResource{}, ""), failNotServed},
		{"a 404 of another group's localqueue", apierrors.NewNotFound(schema.GroupResource{Group: "kueue.x-k8s.io", Resource: "localqueue"}, "q"), failNotServed},
		{"503 ServiceUnavailable", apierrors.NewServiceUnavailable("service unavailable"), failNotServed},
		{"a bare 503", apierrors.NewGenericServerResponse(http.StatusServiceUnavailable, "get", gr, "q", "", 0, false), failNotServed},
		{"Forbidden", apierrors.NewForbidden(gr, "q", errors.New("no")), failRefused},
		{"Unauthorized", apierrors.NewUnauthorized("who"), failRefused},
		{"500", apierrors.NewInternalError(errors.New("boom")), failTransient},
		{"429", apierrors.NewTooManyRequests("slow down", 1), failTransient},
		{"a timeout", apierrors.NewTimeoutError("slow", 1), failTransient},
		{"a dropped connection", errors.New("connection reset by peer"), failTransient},
		{"no error", nil, failNone},
	}
	for _, tt := range tests {
		if got := classifyVisibility(tt.err); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParsePendingKeepsWhatIsWholeAndIgnoresTheRest(t *testing.T) {
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON([]byte(summary(pending{"a", "uid-a", 0, 3}, pending{"b", "", 1, 4}))); err != nil {
		t.Fatal(err)
	}
	got := parsePending(u.Object)
	want := []pendingWorkload{{name: "a", jobs: []types.UID{"uid-a"}, inLQ: 0, inCQ: 3}, {name: "b", inLQ: 1, inCQ: 4}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsed %+v, want %+v", got, want)
	}
	odd := []map[string]any{
		{},
		{"items": "x"},
		{"items": []any{nil, 3, "x", map[string]any{}}},
		{"items": []any{map[string]any{"metadata": map[string]any{"name": "a"}, "positionInLocalQueue": int64(-1), "positionInClusterQueue": int64(0)}}},
		{"items": []any{map[string]any{"metadata": map[string]any{"name": "a"}, "positionInLocalQueue": 0.5, "positionInClusterQueue": int64(0)}}},
		{"items": []any{map[string]any{"metadata": map[string]any{"name": "a"}, "positionInLocalQueue": int64(1) << 40, "positionInClusterQueue": int64(0)}}},
		{"items": []any{map[string]any{"metadata": map[string]any{"name": "a"}, "positionInLocalQueue": int64(0)}}},
		{"items": []any{map[string]any{"metadata": map[string]any{"ownerReferences": []any{"x", map[string]any{"kind": "Pod", "uid": "u"}}}, "positionInLocalQueue": int64(0), "positionInClusterQueue": int64(0)}}},
	}
	for i, o := range odd {
		if got := parsePending(o); len(got) != 0 {
			t.Errorf("case %d: parsed %+v", i, got)
		}
	}
}

func TestAPositionIsFoundByWorkloadNameElseByJobUID(t *testing.T) {
	p := &positions{queues: map[queueKey]*queuePlaces{}}
	key := queueKey{"ns", testQueue}
	p.queues[key] = &queuePlaces{read: 1, at: t0,
		byName: map[string]pendingWorkload{"wl": {name: "wl", inLQ: 0, inCQ: 1}},
		byJob:  map[types.UID]pendingWorkload{"uid": {name: "other", inLQ: 4, inCQ: 5}}}
	s := &positionSub{p: p, key: key}
	if pos, read, ok := s.place("uid", "wl"); !ok || read != 1 || pos != (QueuePosition{InLocalQueue: 1, InClusterQueue: 2, At: t0}) {
		t.Errorf("by name: %+v %d %v", pos, read, ok)
	}
	if pos, _, ok := s.place("uid", ""); !ok || pos.InLocalQueue != 5 {
		t.Errorf("by Job UID: %+v %v", pos, ok)
	}
	if _, read, ok := s.place("none", "none"); ok || read != 1 {
		t.Errorf("not in the read: %d %v", read, ok)
	}
}

func FuzzParsePending(f *testing.F) {
	f.Add([]byte(summary(pending{"a", "uid-a", 0, 3}, pending{"b", "", 1, 4})))
	f.Add([]byte(`{"kind":"PendingWorkloadsSummary","items":[{"metadata":{"name":"a","ownerReferences":[{"kind":"Job","uid":7}]},"positionInLocalQueue":1e30,"positionInClusterQueue":-0}]}`))
	f.Add([]byte(`{"kind":"x","items":[null,[],{"metadata":[]}]}`))
	f.Add([]byte(`{"items":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(o map[string]any) {
			for _, pw := range parsePending(o) {
				if pw.inLQ < 0 || pw.inCQ < 0 || (pw.name == "" && len(pw.jobs) == 0) {
					t.Errorf("parsed %+v", pw)
				}
			}
		}
		var u unstructured.Unstructured // as the dynamic client decodes it
		if err := u.UnmarshalJSON(data); err == nil {
			check(u.Object)
		}
		var m map[string]any // floats for every number
		if err := json.Unmarshal(data, &m); err == nil {
			check(m)
		}
	})
}

package jobwatch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubeworker/kubeworker/manifest"
)

// These tests drive Wait through the fake clientset, whose list and watch
// feed the real informers, and a fake clock for the timeouts. The
// end-to-end tests (e2e_*_test.go) do the same against a real cluster.

type waitCall struct {
	res Result
	err error
}

// startWait runs Wait in a goroutine; the channel gets its answer.
func startWait(w *Watcher, ref JobRef, opts WaitOptions) <-chan waitCall {
	ch := make(chan waitCall, 1)
	go func() {
		res, err := w.Wait(context.Background(), ref, opts)
		ch <- waitCall{res, err}
	}()
	return ch
}

func await(t *testing.T, ch <-chan waitCall) waitCall {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return")
		return waitCall{}
	}
}

// stepWhen waits until the namespace "ns" is synced and the fake clock
// has n timers, then steps it by d.
func stepWhen(t *testing.T, w *Watcher, c *testingclock.FakeClock, n int, d time.Duration) {
	t.Helper()
	synced := func() bool {
		w.mu.Lock()
		s := w.streams["ns"]
		w.mu.Unlock()
		return s != nil && s.syncing() == nil
	}
	for start := time.Now(); !synced() || c.Waiters() < n; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the clock has %d timers, want %d", c.Waiters(), n)
		}
	}
	c.Step(d)
}

var ref1 = JobRef{Namespace: "ns", Name: "run-1"}

func newFakeWatcher(t *testing.T, objs ...runtime.Object) (*Watcher, *fake.Clientset, *testingclock.FakeClock) {
	t.Helper()
	client := fake.NewClientset(objs...)
	clk := testingclock.NewFakeClock(t0)
	w := New(client, Options{Clock: clk})
	t.Cleanup(w.Close)
	return w, client, clk
}

func TestWaitSeesAJobThatEndedBeforeWaitBegan(t *testing.T) {
	job := testJob(withCondition(batchv1.JobComplete, "CompletionsReached"), withCounts(1, 0))
	pod := testPod("p1", 1, running, exited("main", 0, "Completed"))
	w, _, _ := newFakeWatcher(t, job, pod)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{})
	if err != nil || res.Outcome != Succeeded || res.ExitCode != 0 || res.Pod != "p1" {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
}

func TestWaitFollowsTheJobToItsEndAndReportsEachPhase(t *testing.T) {
	job := testJob()
	pod := testPod("p1", 1)
	w, client, _ := newFakeWatcher(t, job, pod)
	var mu sync.Mutex
	var events []Event
	ch := startWait(w, ref1, WaitOptions{Events: EventFunc(func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})})
	eventually(t, "the Pending event", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 1 })
	update(t, client, testPod("p1", 1, running))
	eventually(t, "the Running event", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) == 2 })
	// With backoffLimit 0 the failed pod decides: no Job update needed.
	update(t, client, testPod("p1", 1, running, exited("main", 137, "OOMKilled")))
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != OOMKilled || c.res.ExitCode != 137 || !c.res.FromPod || c.res.JobReason != "" {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"Pending/", "Running/", "Failed/OOMKilled"}
	if len(events) != len(want) {
		t.Fatalf("events %+v", events)
	}
	for i, e := range events {
		if got := string(e.Phase) + "/" + e.Reason; got != want[i] {
			t.Errorf("event %d is %s, want %s", i, got, want[i])
		}
		if i > 0 && e.PrevID != events[i-1].ID {
			t.Errorf("event %d does not link to the one before", i)
		}
	}
}

func TestWaitWaitsForThePodStateThatTheJobCountsImply(t *testing.T) {
	// The Job's Failed condition can arrive before the pod's final
	// state: the two streams are not ordered with each other.
	w, client, _ := newFakeWatcher(t, testJob(), testPod("p1", 1, running))
	ch := startWait(w, ref1, WaitOptions{})
	time.Sleep(100 * time.Millisecond)
	updateJob(t, client, testJob(withCounts(0, 1), withCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)))
	time.Sleep(100 * time.Millisecond)
	update(t, client, testPod("p1", 1, running, evictedPod))
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Evicted || c.res.ExitCode != 137 {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestWaitGivesUpWaitingForPodStatesAfterTheSettleTime(t *testing.T) {
	// The pod is gone for good (garbage-collected long ago).
	job := testJob(withCounts(0, 1), withCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded))
	w, _, clk := newFakeWatcher(t, job)
	ch := startWait(w, ref1, WaitOptions{})
	stepWhen(t, w, clk, 2, settleTime) // pod start and settle timers
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Failed || c.res.ExitCode != -1 {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestWaitListsThePodsItselfWhenThePodStreamLags(t *testing.T) {
	// The informer never delivers this pod (it lacks the selector's
	// label), as a pod stream stuck in backoff would not; a direct list by
	// the Job's controller-uid finds it.
	job := testJob(withCounts(0, 1), withCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded))
	pod := testPod("p1", 1, running, evictedPod, func(p *corev1.Pod) { delete(p.Labels, manifest.LabelManagedBy) })
	w, _, clk := newFakeWatcher(t, job, pod)
	ch := startWait(w, ref1, WaitOptions{})
	stepWhen(t, w, clk, 2, settleTime)
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Evicted || c.res.ExitCode != 137 {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestWaitReportsAJobDeletedBeforeItEndedAsDeleted(t *testing.T) {
	w, client, _ := newFakeWatcher(t, testJob(), testPod("p1", 1, running))
	ch := startWait(w, ref1, WaitOptions{})
	time.Sleep(100 * time.Millisecond)
	if err := client.BatchV1().Jobs("ns").Delete(t.Context(), "run-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Deleted || c.res.ExitCode != -1 || c.res.FinishedAt.IsZero() {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestWaitDiagnosesAPodThatDoesNotStartInTime(t *testing.T) {
	event := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "e1", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "p1", Namespace: "ns", UID: "p1-uid"},
		Reason:         "FailedScheduling", Type: corev1.EventTypeWarning, LastTimestamp: at(1),
		Message: "0/1 nodes are available: 1 Insufficient cpu.",
	}
	w, _, clk := newFakeWatcher(t, testJob(), testPod("p1", 1, unschedulablePod), event)
	ch := startWait(w, ref1, WaitOptions{PodStartTimeout: 5 * time.Second})
	stepWhen(t, w, clk, 1, 5*time.Second)
	c := await(t, ch)
	d := c.res.Diagnosis
	if c.err != nil || c.res.Outcome != Unschedulable || d == nil {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if d.Reason != "Unschedulable" || d.Scheduling == nil || len(d.Scheduling.Insufficient) != 1 || len(d.Events) == 0 {
		t.Errorf("Diagnosis %+v", d)
	}
}

func TestWaitTimesOutAtTheDeadline(t *testing.T) {
	w, _, clk := newFakeWatcher(t, testJob(), testPod("p1", 1, running))
	ch := startWait(w, ref1, WaitOptions{Deadline: time.Minute})
	stepWhen(t, w, clk, 2, time.Minute)
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != TimedOut || c.res.Pod != "p1" {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

func TestWaitRefusesWhatItCannotFollow(t *testing.T) {
	unlabelled := testJob(func(j *batchv1.Job) { j.Name, j.Labels = "other", nil })
	w, _, clk := newFakeWatcher(t, testJob(), unlabelled)
	tests := []struct {
		name string
		ref  JobRef
		opts WaitOptions
		want error
	}{
		{"an invalid name", JobRef{Namespace: "ns", Name: "Not_A_Name"}, WaitOptions{}, ErrInvalidRef},
		{"an empty namespace", JobRef{Name: "run-1"}, WaitOptions{}, ErrInvalidRef},
		{"a container the pod template lacks", ref1, WaitOptions{Container: "nope"}, ErrContainerNotFound},
		{"a Job that does not exist", JobRef{Namespace: "ns", Name: "missing"}, WaitOptions{}, ErrNotFound},
		{"a Job without the selector's labels", JobRef{Namespace: "ns", Name: "other"}, WaitOptions{}, ErrNotSelected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := startWait(w, tt.ref, tt.opts)
			if errors.Is(tt.want, ErrNotFound) || errors.Is(tt.want, ErrNotSelected) {
				stepWhen(t, w, clk, 2, notCachedGrace)
			}
			c := await(t, ch)
			if !errors.Is(c.err, tt.want) || c.res.Outcome != Unknown {
				t.Errorf("Wait = %v, %v; want %v", c.res.Outcome, c.err, tt.want)
			}
		})
	}
}

func TestCloseEndsWaitsInProgressAndRefusesNewOnes(t *testing.T) {
	client := fake.NewClientset(testJob(), testPod("p1", 1, running))
	w := New(client, Options{})
	ch := startWait(w, ref1, WaitOptions{Logs: &safeBuffer{}})
	time.Sleep(100 * time.Millisecond)
	w.Close()
	if c := await(t, ch); !errors.Is(c.err, ErrClosed) {
		t.Errorf("Wait during Close = %v", c.err)
	}
	if _, err := w.Wait(t.Context(), ref1, WaitOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v", err)
	}
	w.Close() // again: nothing happens
}

func TestWaitReturnsTheContextErrorWhenCancelled(t *testing.T) {
	w, _, _ := newFakeWatcher(t, testJob(), testPod("p1", 1, running))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := w.Wait(ctx, ref1, WaitOptions{})
	if !errors.Is(err, context.Canceled) || res.Outcome != Unknown || res.Pod != "p1" {
		t.Errorf("Wait = %+v, %v", res, err)
	}
}

func update(t *testing.T, client *fake.Clientset, pod *corev1.Pod) {
	t.Helper()
	if _, err := client.CoreV1().Pods(pod.Namespace).Update(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func updateJob(t *testing.T, client *fake.Clientset, job *batchv1.Job) {
	t.Helper()
	if _, err := client.BatchV1().Jobs(job.Namespace).Update(t.Context(), job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("waiting for %s", what)
		}
	}
}

func TestWaitPausesThePodStartTimeoutWhileTheJobIsQueued(t *testing.T) {
	w, client, clk := newFakeWatcher(t, testJob(suspendedJob(true)))
	rec := &recorder{}
	ch := startWait(w, ref1, WaitOptions{PodStartTimeout: 5 * time.Second, Events: rec})
	eventually(t, "the Queued event and the pod start timeout paused", func() bool {
		return len(rec.all()) == 1 && clk.Waiters() == 0
	})
	clk.Step(time.Hour)
	time.Sleep(100 * time.Millisecond)
	select {
	case c := <-ch:
		t.Fatalf("Wait ended while the Job was queued: %+v, %v", c.res, c.err)
	default:
	}
	updateJob(t, client, testJob(suspendedJob(false)))
	stepWhen(t, w, clk, 2, 5*time.Second) // the pod start timeout, afresh, and the look at the events
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != NeverStarted {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if want := t0.Add(time.Hour + 5*time.Second); !c.res.FinishedAt.Equal(want) {
		t.Errorf("FinishedAt %v, want %v: the timeout runs from the resume", c.res.FinishedAt, want)
	}
	events := rec.all()
	if len(events) != 2 || events[0].Reason != ReasonQueued || events[1].Reason != ReasonResumed ||
		events[0].Pod != "" || events[0].Phase != "" || events[1].PrevID != events[0].ID || !events[0].Time.Equal(at(1).Time) {
		t.Errorf("events %+v", events)
	}
	// A replay of the same states has the same IDs.
	e1, _ := queueEvent(testJob(suspendedJob(true)), t0)
	if e1.ID != events[0].ID {
		t.Errorf("the Queued event's ID is not stable")
	}
}

func TestWaitEndsAtOnceWhenThePodCannotBeCreated(t *testing.T) {
	event := failedCreateEvent("e1", `pods "run-1-" is forbidden: error looking up service account ns/robot: serviceaccount "robot" not found`, 2)
	w, _, _ := newFakeWatcher(t, testJob(), event)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{PodStartTimeout: time.Hour})
	if err != nil || res.Outcome != CannotCreatePod || res.Reason != "FailedCreate" || res.Pod != "" {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
	if d := res.Diagnosis; d == nil || d.Cause != CauseServiceAccount || d.ServiceAccount != "robot" || len(d.Events) != 1 {
		t.Errorf("Diagnosis %+v", res.Diagnosis)
	}
}

func TestWaitLeavesAFailedCreateThatMayPassToThePodStartTimeout(t *testing.T) {
	event := failedCreateEvent("e1", "Timeout: request did not complete within requested timeout", 2)
	w, _, clk := newFakeWatcher(t, testJob(), event)
	ch := startWait(w, ref1, WaitOptions{PodStartTimeout: 5 * time.Second})
	stepWhen(t, w, clk, 2, 5*time.Second) // the pod start timeout and the second look at the events
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != CannotCreatePod || c.res.Diagnosis == nil || c.res.Diagnosis.Cause != CauseUnknown {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if want := t0.Add(5 * time.Second); !c.res.FinishedAt.Equal(want) {
		t.Errorf("FinishedAt %v, want the pod start timeout %v", c.res.FinishedAt, want)
	}
}

func TestWaitDoesNotLookForFailedCreateWhileTheJobHasAPod(t *testing.T) {
	// The Job's status does not count the pod yet (it lags), but the pod
	// is there: no refusal to look for.
	var lists atomic.Int32
	w, client, clk := newFakeWatcher(t, testJob(), testPod("p1", 1))
	client.PrependReactor("list", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		return false, nil, nil
	})
	ch := startWait(w, ref1, WaitOptions{Deadline: time.Minute, PodStartTimeout: -1})
	stepWhen(t, w, clk, 1, time.Minute)
	if c := await(t, ch); c.err != nil || c.res.Outcome != TimedOut {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
	if n := lists.Load(); n != 0 {
		t.Errorf("a Job with a pod had its events listed %d times", n)
	}
}

func TestWaitTrustsABusyJobStreamBeforeAskingTheAPIServer(t *testing.T) {
	w, client, clk := newFakeWatcher(t)
	ch := startWait(w, JobRef{Namespace: "ns", Name: "missing"}, WaitOptions{PodStartTimeout: time.Hour})
	gets := func() int {
		n := 0
		for _, a := range client.Actions() {
			if a.Matches("get", "jobs") {
				n++
			}
		}
		return n
	}
	// other creates a Job of another run and waits until the stream has
	// seen it, at the fake clock's now.
	other := func(name string) {
		t.Helper()
		w.mu.Lock()
		s := w.streams["ns"]
		w.mu.Unlock()
		before := s.lws[0].lastEvent.Load()
		if _, err := client.BatchV1().Jobs("ns").Create(t.Context(), testJob(func(j *batchv1.Job) { j.Name = name }), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		for start := time.Now(); s.lws[0].lastEvent.Load() == before; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatal("the stream did not see the Job")
			}
		}
	}
	stepWhen(t, w, clk, 2, notCachedGrace-100*time.Millisecond) // the grace and the pod start timeout
	other("busy-1")
	clk.Step(100 * time.Millisecond) // the grace passes while the stream is busy
	stepWhen(t, w, clk, 2, 0)        // a new grace is armed
	if n := gets(); n != 0 {
		t.Fatalf("%d GETs while the Job stream was delivering; want none", n)
	}
	clk.Step(notCachedGrace) // quiet for a whole grace: ask
	c := await(t, ch)
	if !errors.Is(c.err, ErrNotFound) || gets() != 1 {
		t.Errorf("Wait = %v after %d GETs; want ErrNotFound after one", c.err, gets())
	}
}

// TestAStreamCatchingUpIsBusy checks what keeps Waits from asking the API
// server for their Jobs: a list or watch request under way (a relist of
// thousands of Jobs on a loaded server takes seconds and delivers no
// events), one that just ended, and a last request that failed.
func TestAStreamCatchingUpIsBusy(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Now())
	l := &streamLW{w: New(fake.NewClientset(), Options{Clock: clk})}
	if l.busy(notCachedGrace) {
		t.Fatal("a stream that never asked is busy")
	}
	done := l.request()
	clk.Step(time.Minute)
	if !l.busy(notCachedGrace) {
		t.Error("a list under way for a minute is not busy")
	}
	done()
	clk.Step(notCachedGrace - time.Millisecond)
	if !l.busy(notCachedGrace) {
		t.Error("a stream whose list ended within the grace is not busy")
	}
	clk.Step(time.Millisecond)
	if l.busy(notCachedGrace) {
		t.Error("a stream quiet for the grace is busy")
	}
	l.failing = errors.New("the list timed out")
	if !l.busy(notCachedGrace) {
		t.Error("a stream whose last request failed is not busy")
	}
}

package jobwatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubeworker/kubeworker/metrics"
)

// tally is a metrics.Recorder that keeps what the Watcher tells it.
type tally struct {
	metrics.Discard
	mu         sync.Mutex
	restarts   map[string]int
	relists    map[string][]bool // by resource, expired per relist
	reconnects int
	podStart   []time.Duration
	result     []time.Duration
}

func (c *tally) WatchRestart(resource string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.restarts == nil {
		c.restarts = map[string]int{}
	}
	c.restarts[resource]++
}

func (c *tally) Relist(resource string, expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relists == nil {
		c.relists = map[string][]bool{}
	}
	c.relists[resource] = append(c.relists[resource], expired)
}

func (c *tally) LogReconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reconnects++
}

func (c *tally) PodStartLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.podStart = append(c.podStart, d)
}

func (c *tally) ResultLatency(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.result = append(c.result, d)
}

// stubLW returns a streamLW over scripted list and watch answers.
func stubLW(w *Watcher, lists []error, watches []*watch.FakeWatcher, watchErrs []error) *streamLW {
	var nl, nw int
	return &streamLW{resource: "pods", w: w,
		list: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			err := lists[nl]
			nl++
			return &corev1.PodList{}, err
		},
		watch: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			i := nw
			nw++
			if watchErrs[i] != nil {
				return nil, watchErrs[i]
			}
			return watches[i], nil
		},
	}
}

// drain reads the events a peekWatch passes on, until it closes.
func drain(t *testing.T, wi watch.Interface) <-chan []watch.Event {
	t.Helper()
	ch := make(chan []watch.Event, 1)
	go func() {
		var got []watch.Event
		for e := range wi.ResultChan() {
			got = append(got, e)
		}
		ch <- got
	}()
	return ch
}

var gone = apierrors.NewResourceExpired("too old resource version: 1 (5)")

func TestStreamCountsRelistsAndRestartsAfterTheFirstSync(t *testing.T) {
	rec := &tally{}
	w := New(fake.NewClientset(), Options{Metrics: rec})
	defer w.Close()
	watches := []*watch.FakeWatcher{watch.NewFake(), watch.NewFake(), watch.NewFake(), nil}
	lw := stubLW(w, []error{nil, nil, errors.New("connection refused"), nil}, watches, []error{nil, nil, nil, gone})
	ctx := t.Context()

	// The first sync and watch are no relist and no restart.
	if _, err := lw.listObjects(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w0, err := lw.watchObjects(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	events := drain(t, w0)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	watches[0].Add(pod)
	// A 410 Gone arrives as a watch event; the reflector then relists.
	watches[0].Error(&gone.ErrStatus)
	watches[0].Stop()
	if got := <-events; len(got) != 2 || got[0].Type != watch.Added || got[1].Type != watch.Error {
		t.Fatalf("the watch passed on %v, want the Added and Error events", got)
	}
	if _, err := lw.listObjects(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	// Watching again is a restart; a server timeout ends it, and a third
	// watch is another.
	w1, _ := lw.watchObjects(ctx, metav1.ListOptions{})
	w1.Stop()
	w2, _ := lw.watchObjects(ctx, metav1.ListOptions{})
	w2.Stop()
	// A failed list is a failure, no relist; the next one is a relist,
	// not expired.
	if _, err := lw.listObjects(ctx, metav1.ListOptions{}); err == nil {
		t.Fatal("the scripted list error did not come")
	}
	if err := lw.failingErr(); err == nil {
		t.Error("after a failed list the stream is not failing")
	}
	if _, err := lw.listObjects(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := lw.failingErr(); err != nil {
		t.Errorf("after a good list the stream is failing: %v", err)
	}
	// A watch refused with 410 marks the next relist expired.
	if _, err := lw.watchObjects(ctx, metav1.ListOptions{}); !apierrors.IsResourceExpired(err) {
		t.Fatalf("watch error %v, want the scripted 410", err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.restarts["pods"]; got != 3 {
		t.Errorf("%d watch restarts, want 3 (every watch after the first)", got)
	}
	if got := rec.relists["pods"]; len(got) != 2 || !got[0] || got[1] {
		t.Errorf("relists (expired each) %v, want [true false]", got)
	}
}

func TestStreamCountsAWatchListSyncAtItsInitialEventsBookmark(t *testing.T) {
	rec := &tally{}
	w := New(fake.NewClientset(), Options{Metrics: rec})
	defer w.Close()
	watches := []*watch.FakeWatcher{watch.NewFake(), watch.NewFake()}
	lw := stubLW(w, nil, watches, []error{nil, nil})
	initial := metav1.ListOptions{SendInitialEvents: new(true)}
	bookmark := func(fw *watch.FakeWatcher) {
		fw.Action(watch.Bookmark, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
			Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
	}
	for i, fw := range watches {
		wi, err := lw.watchObjects(t.Context(), initial)
		if err != nil {
			t.Fatal(err)
		}
		events := drain(t, wi)
		if i == 0 {
			fw.Error(&gone.ErrStatus) // before the first sync: no relist yet
		}
		bookmark(fw)
		fw.Stop()
		<-events
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.relists["pods"]; len(got) != 1 || got[0] {
		t.Errorf("relists %v, want one, not expired: the 410 came before the first sync", got)
	}
	if got := rec.restarts["pods"]; got != 1 {
		t.Errorf("%d restarts, want 1", got)
	}
}

func TestPeekWatchEndsAtStopWithAnEventUnread(t *testing.T) {
	w := New(fake.NewClientset(), Options{})
	fw := watch.NewFake()
	lw := stubLW(w, nil, []*watch.FakeWatcher{fw}, []error{nil})
	wi, err := lw.watchObjects(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		fw.Add(&corev1.Pod{}) // taken by the peek goroutine, never read from wi
	}()
	<-sent
	wi.Stop()
	w.Close() // waits for the peek goroutine: it must end
}

func TestObserveEndTimesPodStartAndResult(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 30, 0, time.UTC)
	created := now.Add(-30 * time.Second)
	pod := func(name string, started, finished time.Time, container string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}}
		p.Spec.Containers = []corev1.Container{{Name: "sidecar"}, {Name: container}}
		st := corev1.ContainerStatus{Name: container}
		if finished.IsZero() {
			st.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}
		} else {
			st.State.Terminated = &corev1.ContainerStateTerminated{StartedAt: metav1.NewTime(started), FinishedAt: metav1.NewTime(finished)}
		}
		// The sidecar started first and ended last: it must not count.
		side := corev1.ContainerStatus{Name: "sidecar", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			StartedAt: metav1.NewTime(created), FinishedAt: metav1.NewTime(now)}}}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{side, st}
		return p
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}}
	tests := []struct {
		name             string
		pods             []*corev1.Pod
		podStart, result []time.Duration
	}{
		{"a pod that ran: both", []*corev1.Pod{pod("a", created.Add(4*time.Second), now.Add(-2*time.Second), "main")},
			[]time.Duration{4 * time.Second}, []time.Duration{2 * time.Second}},
		{"a retried Job: the first start and the last end",
			[]*corev1.Pod{pod("b", created.Add(9*time.Second), now.Add(-time.Second), "main"), pod("a", created.Add(3*time.Second), created.Add(5*time.Second), "main")},
			[]time.Duration{3 * time.Second}, []time.Duration{time.Second}},
		{"a pod still running: the start only", []*corev1.Pod{pod("a", created.Add(time.Second), time.Time{}, "main")},
			[]time.Duration{time.Second}, nil},
		{"no pod: nothing", nil, nil, nil},
		{"no run container status: nothing", []*corev1.Pod{pod("a", created, now, "other")}, nil, nil},
		{"a clock behind the server: zero, not negative", []*corev1.Pod{pod("a", created.Add(-time.Second), now.Add(time.Second), "main")},
			[]time.Duration{0}, []time.Duration{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &tally{}
			w := New(fake.NewClientset(), Options{Metrics: rec, Clock: clocktesting.NewFakeClock(now)})
			defer w.Close()
			w.observeEnd(job, tt.pods, "main")
			if !equalDurations(rec.podStart, tt.podStart) || !equalDurations(rec.result, tt.result) {
				t.Errorf("pod start %v, result %v; want %v, %v", rec.podStart, rec.result, tt.podStart, tt.result)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSyncedWithoutStreamsAndAfterClose(t *testing.T) {
	w := New(fake.NewClientset(), Options{})
	if err := w.Synced(); err != nil {
		t.Errorf("a Watcher with no stream: Synced() = %v, want nil", err)
	}
	w.Close()
	if err := w.Synced(); !errors.Is(err, ErrClosed) {
		t.Errorf("a closed Watcher: Synced() = %v, want ErrClosed", err)
	}
}

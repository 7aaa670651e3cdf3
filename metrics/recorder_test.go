package metrics_test

import (
	"sync"
	"testing"
	"time"

	"github.com/kubeworker/kubeworker/metrics"
)

// requestLog is a Recorder that keeps the API requests it is told of;
// it embeds Discard for the rest, as a Recorder of one's own should.
type requestLog struct {
	metrics.Discard
	mu    sync.Mutex
	codes map[metrics.Request][]int
}

func (l *requestLog) APIRequest(r metrics.Request, code int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.codes == nil {
		l.codes = map[metrics.Request][]int{}
	}
	l.codes[r] = append(l.codes[r], code)
}

func (l *requestLog) get(r metrics.Request) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.codes[r]...)
}

func TestDiscardDoesNothingAndIsTheDefault(t *testing.T) {
	var rec metrics.Recorder = metrics.Discard{}
	// Every method, any argument: nothing happens, nothing panics.
	rec.RunStarted()
	rec.RunFinished("Succeeded")
	rec.CreateAttempt(true)
	rec.WatchRestart("jobs")
	rec.Relist("pods", true)
	rec.LogReconnect()
	rec.PodStartLatency(-time.Second)
	rec.ResultLatency(time.Hour)
	rec.APIRequest(metrics.Request{}, 0)
	rec.AdmissionWait(time.Minute, true)
	rec.Preempted()
	rec.Requeued()
	rec.QueueWaitStarted()
	rec.QueueWaitEnded()
	if got := metrics.OrDiscard(nil); got != (metrics.Discard{}) {
		t.Errorf("OrDiscard(nil) = %#v, want Discard{}", got)
	}
	own := &requestLog{}
	if got := metrics.OrDiscard(own); got != own {
		t.Errorf("OrDiscard(r) = %#v, want r itself", got)
	}
}

func TestRequestCountCountsConcurrentAddsAndHandsOutCopies(t *testing.T) {
	var c metrics.RequestCount // the zero value works
	if n := c.Total(); n != 0 || c.Requests() == nil {
		t.Fatalf("zero RequestCount: Total %d, Requests %v; want 0 and an empty map", n, c.Requests())
	}
	srv := newServer(t)
	ctx := metrics.WithRequestCount(t.Context(), &c)
	client := srv.client(nil)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { srv.get(t, ctx, client, "/api/v1/namespaces/ns/pods/p/log") })
	}
	wg.Wait()
	got := c.Requests()
	if want := (metrics.Requests{{Verb: "get", Resource: "pods/log"}: 20}); !equal(got, want) || c.Total() != 20 || got.Total() != 20 {
		t.Errorf("Requests %v (Total %d), want %v", got, c.Total(), want)
	}
	var none *metrics.RequestCount // as RequestCountFrom gives for a context without one
	if none.Total() != 0 || none.Requests() == nil || len(none.Requests()) != 0 {
		t.Errorf("a nil RequestCount: Total %d, Requests %v; want 0 and an empty map", none.Total(), none.Requests())
	}
	got[metrics.Request{Verb: "get", Resource: "pods/log"}] = 99
	if c.Total() != 20 {
		t.Errorf("changing what Requests returned changed the count: Total %d", c.Total())
	}
}

func equal(a, b metrics.Requests) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

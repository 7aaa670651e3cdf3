package retry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// fakeTime is a clock that moves only when its timer is started: each
// wait passes at once, and is recorded.
type fakeTime struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
	c     chan time.Time
}

func newFakeTime() *fakeTime {
	return &fakeTime{t: time.Now(), c: make(chan time.Time, 1)} // real now: a context deadline is real time
}

func (f *fakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeTime) Start(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	f.c <- time.Time{}
}
func (f *fakeTime) Stop()               {}
func (f *fakeTime) C() <-chan time.Time { return f.c }

func (f *fakeTime) recorded() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// with returns p on the fake clock.
func (f *fakeTime) with(p Policy) Policy {
	p.now, p.timer = f.now, func() backoff.Timer { return f }
	return p
}

// failing returns an op that fails with errs in turn, then succeeds with
// "ok", and counts its calls.
func failing(errs ...error) (func(context.Context) (string, error), *int) {
	calls := 0
	return func(context.Context) (string, error) {
		calls++
		if calls <= len(errs) {
			return "", errs[calls-1]
		}
		return "ok", nil
	}, &calls
}

func repeat(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

var (
	internal = apierrors.NewInternalError(errors.New("etcd leader changed"))
	reset    = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
)

func TestTheZeroPolicyRetriesTransientErrorsWithGrowingJitteredWaits(t *testing.T) {
	ft := newFakeTime()
	op, calls := failing(repeat(internal, 8)...)
	v, err := Value(context.Background(), ft.with(Policy{}), op)
	if err != nil || v != "ok" || *calls != 9 {
		t.Fatalf("got %q, %v after %d calls; want ok after 9", v, err, *calls)
	}
	want := DefaultInitial
	for i, w := range ft.recorded() {
		if lo, hi := want/2, want*3/2; w < lo || w > hi {
			t.Errorf("wait %d: %v, want within ±50%% of %v", i, w, want)
		}
		want = min(2*want, DefaultMax)
	}
}

func TestEveryKindOfTransientErrorIsRetried(t *testing.T) {
	for _, err := range []error{
		apierrors.NewTooManyRequests("slow down", 0),
		apierrors.NewTooManyRequests("slow down", 2),
		internal,
		apierrors.NewServiceUnavailable("restarting"),
		apierrors.NewTimeoutError("handler timeout", 0),
		reset,
		fmt.Errorf(`Get "https://127.0.0.1/x": %w`, errors.New("http2: client connection force closed via ClientConn.Close")),
		context.DeadlineExceeded,
	} {
		ft := newFakeTime()
		op, calls := failing(err, err)
		if _, gerr := Value(context.Background(), ft.with(Policy{}), op); gerr != nil || *calls != 3 {
			t.Errorf("%v: got %v after %d calls, want success after 3", err, gerr, *calls)
		}
	}
}

func TestRetryAfterIsHonouredWhenLonger(t *testing.T) {
	ft := newFakeTime()
	op, _ := failing(apierrors.NewTooManyRequests("slow down", 7), apierrors.NewTooManyRequests("slow down", 7))
	if _, err := Value(context.Background(), ft.with(Policy{}), op); err != nil {
		t.Fatal(err)
	}
	for _, w := range ft.recorded() {
		if w != 7*time.Second {
			t.Errorf("waited %v, want the server's Retry-After of 7s", w)
		}
	}
}

func TestAFinalErrorEndsTheCallAtOnceUnchanged(t *testing.T) {
	for _, final := range []error{
		apierrors.NewBadRequest("bad"),
		apierrors.NewForbidden(gr, "x", errors.New("no")),
		apierrors.NewNotFound(gr, "x"),
		apierrors.NewConflict(gr, "x", errors.New("changed")),
		errors.New("not an API error"),
	} {
		ft := newFakeTime()
		op, calls := failing(internal, final)
		_, err := Value(context.Background(), ft.with(Policy{}), op)
		if err != final || *calls != 2 {
			t.Errorf("got %v after %d calls, want %v as it is after 2", err, *calls, final)
		}
	}
}

func TestTheDeadlineEndsTheRetriesWithTheLastError(t *testing.T) {
	ft := newFakeTime()
	op, calls := failing(repeat(internal, 1000)...)
	_, err := Value(context.Background(), ft.with(Policy{Deadline: time.Minute}), op)
	if !errors.Is(err, ErrGaveUp) || !apierrors.IsInternalError(err) {
		t.Fatalf("got %v, want ErrGaveUp wrapping the 500", err)
	}
	var total time.Duration
	for _, w := range ft.recorded() {
		total += w
	}
	if total != time.Minute {
		t.Errorf("waited %v in all, want the last wait cut to make an attempt at the 1m deadline", total)
	}
	if *calls != len(ft.recorded())+1 {
		t.Errorf("%d calls for %d waits", *calls, len(ft.recorded()))
	}
}

func TestTheDefaultDeadlineBoundsACallThatNeverPasses(t *testing.T) {
	ft := newFakeTime()
	op, _ := failing(repeat(reset, 1000)...)
	_, err := Value(context.Background(), ft.with(Policy{}), op)
	if !errors.Is(err, ErrGaveUp) || !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("got %v, want ErrGaveUp wrapping the reset", err)
	}
	var total time.Duration
	for _, w := range ft.recorded() {
		total += w
	}
	if total != DefaultDeadline {
		t.Errorf("retried for %v, want %v", total, DefaultDeadline)
	}
}

func TestNoWaitEndsAfterTheContextsDeadline(t *testing.T) {
	ft := newFakeTime()
	ctx, cancel := context.WithDeadline(context.Background(), ft.now().Add(5*time.Second))
	defer cancel()
	op, _ := failing(repeat(internal, 1000)...)
	_, err := Value(ctx, ft.with(Policy{}), op)
	if !errors.Is(err, ErrGaveUp) || !apierrors.IsInternalError(err) {
		t.Fatalf("got %v, want ErrGaveUp wrapping the 500", err)
	}
	var total time.Duration
	for _, w := range ft.recorded() {
		total += w
	}
	if total > 5*time.Second {
		t.Errorf("waited %v in all, past the context's 5s", total)
	}
}

func TestTheContextsEndStopsTheWaitAndKeepsTheLastError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := Policy{Initial: time.Hour, Notify: func(error, time.Duration) { cancel() }}
	op, calls := failing(repeat(internal, 10)...)
	_, err := Value(ctx, p, op)
	if !errors.Is(err, context.Canceled) || !apierrors.IsInternalError(err) || *calls != 1 {
		t.Fatalf("got %v after %d calls, want context.Canceled wrapping the 500 after 1", err, *calls)
	}
}

func TestAttemptsBoundTheCalls(t *testing.T) {
	ft := newFakeTime()
	op, calls := failing(repeat(internal, 10)...)
	err := ft.with(Policy{Attempts: 3}).Do(context.Background(), func(ctx context.Context) error { _, err := op(ctx); return err })
	if !errors.Is(err, ErrGaveUp) || *calls != 3 {
		t.Fatalf("got %v after %d calls, want ErrGaveUp after 3", err, *calls)
	}
	op, calls = failing(internal)
	_, err = Value(context.Background(), ft.with(Policy{Deadline: -1}), op)
	if !errors.Is(err, ErrGaveUp) || *calls != 1 {
		t.Fatalf("a negative deadline: got %v after %d calls, want one attempt", err, *calls)
	}
}

func TestNotifyingChainsTheNotifications(t *testing.T) {
	ft := newFakeTime()
	var got []string
	p := Policy{Notify: func(err error, _ time.Duration) { got = append(got, "caller's") }}
	p = p.Notifying(func(error, time.Duration) { got = append(got, "call site's") })
	op, _ := failing(internal)
	if _, err := Value(context.Background(), ft.with(p), op); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[caller's call site's]" {
		t.Errorf("notified %v", got)
	}
}

func TestOrTakesTheOwnersPolicyOnlyForAZeroOne(t *testing.T) {
	owner := Policy{Deadline: time.Minute}
	if got := (Policy{}).Or(owner); got.Deadline != time.Minute {
		t.Errorf("zero.Or(owner) has deadline %v", got.Deadline)
	}
	if got := (Policy{Attempts: 1}).Or(owner); got.Deadline != 0 || got.Attempts != 1 {
		t.Errorf("own.Or(owner) = %+v, want its own", got)
	}
	if (Policy{Notify: func(error, time.Duration) {}}).IsZero() {
		t.Error("a Policy with Notify counts as zero")
	}
}

func TestTheDeadlineCountsFromTheFirstFailureNotTheFirstAttempt(t *testing.T) {
	// The first attempt takes longer than the whole deadline (client-go
	// repeating a 429 inside one call, say); the retries still get their
	// deadline after it.
	ft := newFakeTime()
	calls := 0
	op := func(context.Context) (string, error) {
		if calls++; calls == 1 {
			ft.mu.Lock()
			ft.t = ft.t.Add(5 * time.Minute)
			ft.mu.Unlock()
		}
		if calls < 4 {
			return "", apierrors.NewTooManyRequests("slow down", 1)
		}
		return "ok", nil
	}
	if v, err := Value(context.Background(), ft.with(Policy{Deadline: time.Minute}), op); err != nil || v != "ok" || calls != 4 {
		t.Fatalf("got %q, %v after %d calls; want ok after 4", v, err, calls)
	}
}

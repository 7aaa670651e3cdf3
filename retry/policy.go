package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Defaults of a [Policy]'s zero fields.
const (
	// DefaultDeadline is how long a call keeps retrying after its first
	// transient failure: a few minutes, enough to ride out an API server
	// restart or a burst that starves it, short enough that a call cut
	// off for good fails in time.
	DefaultDeadline = 3 * time.Minute
	// DefaultInitial is the first wait, before randomisation.
	DefaultInitial = 500 * time.Millisecond
	// DefaultMax caps every wait but a longer Retry-After.
	DefaultMax = 30 * time.Second
)

// ErrGaveUp is matched, through errors.Is, by the error of a call that
// ran out of time or attempts while its errors were still transient. The
// error wraps the last one too.
var ErrGaveUp = errors.New("retry: gave up")

// Policy says how long and how often to retry a transient failure. The
// zero value works: waits from DefaultInitial doubling to DefaultMax, each
// randomised by ±50% (or the server's Retry-After when longer), for up to
// DefaultDeadline. A Policy is a value; copies are independent and it is
// safe for concurrent use.
type Policy struct {
	// Deadline bounds the retries: no attempt starts later than this after
	// the first transient failure, and the last wait is cut short to make
	// one at the deadline. The clock starts at the first failure, not at
	// the first attempt, because one attempt can last minutes by itself:
	// client-go repeats a 429 that carries Retry-After up to 10 times
	// within one call, and under API Priority and Fairness the API
	// server's Retry-After grows to 32 s while it keeps refusing. An
	// attempt under way is not cut; the client's timeout, client-go's own
	// repeats and the caller's context bound it. The caller's context's
	// deadline, if earlier, wins: no wait ends after it. Default
	// DefaultDeadline; a negative value means one attempt only.
	Deadline time.Duration
	// Initial is the first wait. Default DefaultInitial.
	Initial time.Duration
	// Max caps every wait, except that a longer Retry-After is honoured.
	// Default DefaultMax.
	Max time.Duration
	// Attempts, if positive, bounds the attempts in all, first included.
	// Default 0: as many as the deadline allows.
	Attempts int
	// Notify, if set, is called before each wait with the error that
	// caused it and the wait. Default: none.
	Notify func(err error, wait time.Duration)

	// Tests replace the clock and the timer.
	now   func() time.Time
	timer func() backoff.Timer
}

// IsZero reports whether p is the zero Policy, all defaults: a part that
// takes a Policy of its own and one from its owner uses the owner's when
// its own is zero.
func (p Policy) IsZero() bool {
	return p.Deadline == 0 && p.Initial == 0 && p.Max == 0 && p.Attempts == 0 && p.Notify == nil && p.now == nil && p.timer == nil
}

// Or returns p, or def when p is zero.
func (p Policy) Or(def Policy) Policy {
	if p.IsZero() {
		return def
	}
	return p
}

// Notifying returns a copy of p whose Notify calls p's Notify, if any, and
// then f.
func (p Policy) Notifying(f func(err error, wait time.Duration)) Policy {
	prev := p.Notify
	p.Notify = func(err error, wait time.Duration) {
		if prev != nil {
			prev(err, wait)
		}
		f(err, wait)
	}
	return p
}

// Do calls op until it succeeds, fails with an error [Retriable] refuses,
// or time runs out (see [Policy]). It returns nil, op's last error as it
// is when a retry cannot fix it, an error matching [ErrGaveUp] and
// wrapping the last error when the policy's deadline or attempts ran out,
// or the context's error (wrapping the last error too, when there was
// one) when ctx ended. op is given ctx.
func (p Policy) Do(ctx context.Context, op func(ctx context.Context) error) error {
	_, err := Value(ctx, p, func(ctx context.Context) (struct{}, error) { return struct{}{}, op(ctx) })
	return err
}

// Value is [Policy.Do] for an op that returns a value: the value of the
// attempt that succeeded, or of the last attempt.
func Value[T any](ctx context.Context, p Policy, op func(ctx context.Context) (T, error)) (T, error) {
	now := p.now
	if now == nil {
		now = time.Now
	}
	exp := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(orDefault(p.Initial, DefaultInitial)),
		backoff.WithMaxInterval(orDefault(p.Max, DefaultMax)),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0), // the deadline is ours: see NextBackOff
	)
	start := now()
	b := &schedule{exp: exp, now: now, attempts: p.Attempts}
	switch {
	case p.Deadline < 0:
		b.attempts = 1
	default:
		b.window = orDefault(p.Deadline, DefaultDeadline)
	}
	if d, ok := ctx.Deadline(); ok {
		b.ctxDeadline = d
	}
	var last error
	tries := 0
	attempt := func() (T, error) {
		tries++
		v, err := op(ctx)
		if err == nil {
			return v, nil
		}
		if !Retriable(err) {
			return v, backoff.Permanent(err)
		}
		last = err
		b.retryAfter = 0
		if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
			b.retryAfter = time.Duration(s) * time.Second
		}
		return v, err
	}
	var timer backoff.Timer
	if p.timer != nil {
		timer = p.timer()
	}
	v, err := backoff.RetryNotifyWithTimerAndData(attempt, backoff.WithContext(b, ctx), p.Notify, timer)
	switch {
	case err == nil:
		return v, nil
	case b.gaveUp:
		return v, fmt.Errorf("%w after %d attempts in %s: %w", ErrGaveUp, tries, now().Sub(start).Round(time.Millisecond), err)
	case ctx.Err() != nil && last != nil && err != last:
		return v, fmt.Errorf("%w (after %d attempts; last error: %w)", err, tries, last)
	}
	return v, err
}

// schedule is the BackOff of one call: the exponential schedule, the
// server's Retry-After when longer, cut at the deadlines and attempts.
type schedule struct {
	exp         *backoff.ExponentialBackOff
	now         func() time.Time
	window      time.Duration // the retries' deadline, from the first failure; 0: none
	deadline    time.Time     // no attempt starts after it; set at the first failure
	ctxDeadline time.Time     // no wait ends after it; zero: none
	attempts    int           // the most attempts in all; 0: no limit
	made        int           // attempts made
	retryAfter  time.Duration
	gaveUp      bool // the schedule, not the context, stopped the retries
}

// NextBackOff is called after each failed attempt that may be retried.
func (s *schedule) NextBackOff() time.Duration {
	s.made++
	if s.attempts > 0 && s.made >= s.attempts {
		return s.stop()
	}
	wait := max(s.exp.NextBackOff(), s.retryAfter)
	now := s.now()
	if s.window > 0 && s.deadline.IsZero() {
		s.deadline = now.Add(s.window) // the first failure
	}
	if !s.deadline.IsZero() {
		left := s.deadline.Sub(now)
		if left <= 0 {
			return s.stop()
		}
		wait = min(wait, left)
	}
	if !s.ctxDeadline.IsZero() && now.Add(wait).After(s.ctxDeadline) {
		return s.stop() // an attempt after the caller's deadline is no use
	}
	return wait
}

func (s *schedule) stop() time.Duration {
	s.gaveUp = true
	return backoff.Stop
}

// Reset starts the schedule afresh.
func (s *schedule) Reset() {
	s.exp.Reset()
	s.made, s.retryAfter, s.gaveUp, s.deadline = 0, 0, false, time.Time{}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

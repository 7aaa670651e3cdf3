package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// errRecreate is what fencedLock answers client-go's leader election when
// it tries to create again a Lease this member held and lost.
var errRecreate = errors.New("fleet: not recreating a Lease this member has lost")

// fencedLock is the resource lock that client-go's LeaderElector takes and
// renews: a LeaseLock that notes when each successful renewal started and
// why the last one failed, that reports a Lease taken by another holder or
// deleted once this member held it, and that never creates such a Lease
// again (the leader elector would, and then others would see a member
// they had seen leave come back).
type fencedLock struct {
	*resourcelock.LeaseLock
	clock  clock.Clock
	logger *slog.Logger
	lose   func(error) // called when the Lease is seen lost; idempotent

	mu        sync.Mutex
	held      bool      // this member has held the Lease; guarded by mu
	lastStart time.Time // when the last successful write began; guarded by mu
	lastErr   error     // the last failed request, nil after a success; guarded by mu
	waitedFor string    // the other holder last logged; guarded by mu
}

// Get reads the Lease, reporting it lost if it was deleted or another
// holder has it since this member held it.
func (l *fencedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := l.LeaseLock.Get(ctx)
	l.mu.Lock()
	held := l.held
	l.lastErr = err
	waiting := ""
	if err == nil && !held && rec.HolderIdentity != "" && rec.HolderIdentity != l.Identity() && rec.HolderIdentity != l.waitedFor {
		l.waitedFor, waiting = rec.HolderIdentity, rec.HolderIdentity
	}
	l.mu.Unlock()
	switch {
	case err == nil && held && rec.HolderIdentity != l.Identity():
		l.lose(fmt.Errorf("%w: the Lease is now held by %q", ErrLost, rec.HolderIdentity))
	case apierrors.IsNotFound(err) && held:
		l.lose(fmt.Errorf("%w: the Lease was deleted", ErrLost))
	case waiting != "":
		l.logger.Info("fleet: the Lease is held by another incarnation or a replica of the same identity; waiting until it expires", "holder", waiting)
	}
	return rec, raw, err
}

// Create creates the Lease, unless this member has held it before.
func (l *fencedLock) Create(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	l.mu.Lock()
	held := l.held
	l.mu.Unlock()
	if held {
		l.lose(fmt.Errorf("%w: the Lease was deleted", ErrLost))
		return errRecreate
	}
	start := l.clock.Now()
	err := l.LeaseLock.Create(ctx, ler)
	l.wrote(start, ler, err)
	return err
}

// Update writes the Lease: a renewal, or the takeover of an expired one.
func (l *fencedLock) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	start := l.clock.Now()
	err := l.LeaseLock.Update(ctx, ler)
	l.wrote(start, ler, err)
	return err
}

// wrote notes the outcome of a write begun at start.
func (l *fencedLock) wrote(start time.Time, ler resourcelock.LeaderElectionRecord, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err
	if err == nil && ler.HolderIdentity == l.Identity() {
		l.held, l.lastStart = true, start
	}
}

// err returns the last request's error, nil if it succeeded.
func (l *fencedLock) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// watchdog reports the Lease lost once deadline has passed since the
// start of the last successful write, or returns when ctx ends. Others
// stop counting this member as live no earlier than LeaseDuration after
// that write reached the API server, which is after it began; so with
// deadline < LeaseDuration this member knows it is lost before any other
// replica thinks so, by the difference, as long as clocks run at about
// the same rate. It runs once the Lease is held.
func (l *fencedLock) watchdog(ctx context.Context, deadline time.Duration) {
	for {
		l.mu.Lock()
		left := deadline - l.clock.Since(l.lastStart)
		lastErr := l.lastErr
		l.mu.Unlock()
		if left <= 0 {
			err := fmt.Errorf("%w: no renewal succeeded within %v", ErrLost, deadline)
			if lastErr != nil {
				err = fmt.Errorf("%w: no renewal succeeded within %v; the last request failed: %w", ErrLost, deadline, lastErr)
			}
			l.lose(err)
			return
		}
		t := l.clock.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

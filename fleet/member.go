package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

var (
	// ErrLost is wrapped by [Member.Err] once the member has lost its
	// Lease: a renewal did not succeed in time, or the Lease was deleted
	// or taken. The member must stop acting on its runs; Join again to
	// come back, as a new member.
	ErrLost = errors.New("fleet: lost the Lease")

	// ErrLeft is [Member.Err] after [Member.Leave].
	ErrLeft = errors.New("fleet: left the fleet")
)

// Member is one replica's membership of the fleet, from [Join] until it
// leaves or loses its Lease; its methods are safe for concurrent use.
type Member struct {
	client kubernetes.Interface
	opts   Options
	name   string // Identity + "/" + incarnation: the Lease's holderIdentity
	lease  string // the Lease's name
	logger *slog.Logger
	view   *view
	lock   *fencedLock

	stop        context.CancelFunc // ends every goroutine
	stopElector context.CancelFunc // ends the leader election and watchdog
	wg          sync.WaitGroup

	lost      chan struct{} // closed by fence
	fenceOnce sync.Once
	seenSelf  chan struct{} // closed when the view first shows the Lease held by this member

	mu      sync.Mutex
	err     error     // why lost is closed; guarded by mu
	seenOwn bool      // the view has shown the Lease held by this member; guarded by mu
	ownUID  types.UID // that Lease's UID; guarded by mu

	leaveOnce sync.Once
	leaveErr  error
}

// Join makes this replica a member of the fleet of opts.Worker in
// opts.Namespace. It returns once the replica holds its own Lease and the
// members view has listed the fleet's Leases and shows this member; it
// fails when ctx ends first (with the last list, watch or Lease error, if
// any) or when opts are invalid ([ErrInvalidOptions]). ctx bounds only
// the join: the membership lasts until [Member.Leave] or until the Lease
// is lost ([Member.Lost]).
//
// If the Lease is held by someone else (an earlier incarnation of this
// replica that did not leave, or another replica with the same
// Identity), Join waits until it has seen that holder's record unchanged
// for its lease duration, then takes the Lease over.
func Join(ctx context.Context, client kubernetes.Interface, opts Options) (*Member, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	name := opts.Identity + "/" + utilrand.String(10)
	lease := leaseName(opts.Worker, opts.Identity)
	logger := opts.Logger.With("lease", opts.Namespace+"/"+lease, "member", name)
	bg, stop := context.WithCancel(klog.NewContext(context.Background(), logr.FromSlogHandler(canceledAtDebug{logger.Handler()})))
	electing, stopElector := context.WithCancel(bg)
	m := &Member{
		client:      client,
		opts:        opts,
		name:        name,
		lease:       lease,
		logger:      logger,
		stop:        stop,
		stopElector: stopElector,
		lost:        make(chan struct{}),
		seenSelf:    make(chan struct{}),
	}
	m.lock = &fencedLock{
		LeaseLock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: opts.Namespace, Name: lease},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: name},
			Labels:     map[string]string{LabelWorker: opts.Worker},
		},
		clock:  opts.Clock,
		logger: logger,
		lose:   m.fence,
	}
	acquired := make(chan struct{})
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          m.lock,
		LeaseDuration: opts.LeaseDuration,
		RenewDeadline: opts.RenewDeadline,
		RetryPeriod:   opts.RetryPeriod,
		Name:          lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) { close(acquired) },
			OnStoppedLeading: func() {
				if err := m.lock.err(); err != nil {
					m.fence(fmt.Errorf("%w: the renewal loop ended; the last request failed: %w", ErrLost, err))
					return
				}
				m.fence(fmt.Errorf("%w: the renewal loop ended", ErrLost))
			},
		},
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	if m.view, err = newView(client, opts, m.onOwnLease); err != nil {
		stop()
		return nil, fmt.Errorf("fleet: set up the Lease informer: %w", err)
	}
	m.view.run(bg, &m.wg)
	if err := m.await(ctx, m.view.synced.Done(), "list the fleet's Leases", m.view.err); err != nil {
		return nil, m.abandon(ctx, err)
	}
	m.wg.Go(func() { elector.Run(electing) })
	if err := m.await(ctx, acquired, "take the Lease", m.lock.err); err != nil {
		return nil, m.abandon(ctx, err)
	}
	m.wg.Go(func() { m.lock.watchdog(electing, opts.RenewDeadline) })
	if err := m.await(ctx, m.seenSelf, "see the Lease held in the members view", m.view.err); err != nil {
		return nil, m.abandon(ctx, err)
	}
	logger.Info("fleet: joined")
	return m, nil
}

// await waits for done; it fails if the member is lost or ctx ends
// first, saying what it was waiting to do and the last error lastErr
// returns.
func (m *Member) await(ctx context.Context, done <-chan struct{}, what string, lastErr func() error) error {
	select {
	case <-done:
		return nil
	case <-m.lost:
		return fmt.Errorf("fleet: join: %w", m.Err())
	case <-ctx.Done():
		if err := lastErr(); err != nil {
			return fmt.Errorf("fleet: join: %s: %w", what, errors.Join(ctx.Err(), err))
		}
		return fmt.Errorf("fleet: join: %s: %w", what, ctx.Err())
	}
}

// abandon undoes a Join that failed with err, deleting the Lease if it
// was taken, within RenewDeadline even when ctx has ended.
func (m *Member) abandon(ctx context.Context, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.RenewDeadline)
	defer cancel()
	if cerr := m.shutdown(ctx, err); cerr != nil {
		return errors.Join(err, cerr)
	}
	return err
}

// Name is this member's name in the fleet, as [Member.Members] and
// [Member.Owner] give it: "<Identity>/<incarnation>", where the
// incarnation is random and new for every Join, so a replica that lost
// its Lease and joins again is a new member. It is the Lease's
// holderIdentity.
func (m *Member) Name() string {
	return m.name
}

// Identity is the replica's identity, [Options.Identity] or its default:
// the same for every Join of one replica.
func (m *Member) Identity() string {
	return m.opts.Identity
}

// Lost returns a channel closed when this member is no longer one: it
// lost its Lease (see [ErrLost]) or it left. Once it is closed the
// replica must not act on the runs it owned: other replicas may already
// own them. Lost is closed before any other replica can see the Lease
// expire, by a margin of LeaseDuration minus RenewDeadline (clocks may
// differ in offset, not much in rate), and at once when the members view
// shows the Lease deleted or held by another.
func (m *Member) Lost() <-chan struct{} {
	return m.lost
}

// Err returns nil while the member holds its Lease, then why not: an
// error wrapping [ErrLost] with the cause, or [ErrLeft].
func (m *Member) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Members returns the names of the live members, sorted, as this
// replica's view shows them now: every Lease labelled with the worker's
// name that has a holder and that this replica has seen renewed within
// its lease duration, measured on its own clock. A Lease already there
// when the view started counts as renewed then, so a replica that dies
// unseen is dropped one lease duration after the view starts. The view
// also holds this member (until its Lease is lost or deleted).
func (m *Member) Members() []string {
	live, _ := m.view.members(m.opts.Clock.Now())
	return live
}

// Changes returns a channel that receives a value when the set of live
// members may have changed: a member joined, left (its Lease deleted or
// released), or expired (found by a local timer at its expiry, with or
// without a watch event). Signals coalesce: after one, call Members for
// the current set. The first signal, for the set Join found, comes right
// after Join. There is one channel per member: give it one reader.
func (m *Member) Changes() <-chan struct{} {
	return m.view.changes
}

// Owner returns which live member owns the run runID: [Owner] over
// [Member.Members].
func (m *Member) Owner(runID string) string {
	return Owner(m.Members(), runID)
}

// Leave ends the membership cleanly: it closes Lost, stops renewing the
// Lease and the members view, and deletes the Lease if this member still
// holds it (with preconditions on its UID and resourceVersion, so a newer
// holder's Lease is never deleted); the others see the member gone at
// once, by their watch, and take over its runs. Stop acting on runs
// before calling Leave. ctx bounds the delete; if it fails, the Lease
// stays until it expires and the error says why. Leave returns after
// every goroutine of the member has ended; later calls return the first
// call's result. Call Leave after Lost too, to free the member.
func (m *Member) Leave(ctx context.Context) error {
	m.leaveOnce.Do(func() { m.leaveErr = m.shutdown(ctx, ErrLeft) })
	return m.leaveErr
}

// shutdown fences the member with cause, stops its goroutines and waits
// for them, then deletes its Lease if it holds it.
func (m *Member) shutdown(ctx context.Context, cause error) error {
	m.fence(cause)
	m.stop()
	m.wg.Wait()
	if err := m.deleteLease(ctx); err != nil {
		return err
	}
	if errors.Is(cause, ErrLeft) {
		m.logger.Info("fleet: left")
	}
	return nil
}

// deleteLease deletes the Lease if this member is its holder.
func (m *Member) deleteLease(ctx context.Context) error {
	leases := m.client.CoordinationV1().Leases(m.opts.Namespace)
	err := retry.OnError(retry.DefaultRetry, apierrors.IsConflict, func() error {
		lease, err := leases.Get(ctx, m.lease, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != m.name {
			return nil
		}
		pre := metav1.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion}
		err = leases.Delete(ctx, m.lease, metav1.DeleteOptions{Preconditions: &pre})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("fleet: delete the Lease %s/%s: %w", m.opts.Namespace, m.lease, err)
	}
	return nil
}

// fence closes Lost, keeping why, and stops renewing. Only the first call
// counts.
func (m *Member) fence(cause error) {
	m.fenceOnce.Do(func() {
		m.mu.Lock()
		m.err = cause
		m.mu.Unlock()
		close(m.lost)
		m.stopElector()
		if errors.Is(cause, ErrLost) {
			m.logger.Warn("fleet: lost the Lease; stop acting on this member's runs and join again", "err", cause)
		}
	})
}

// onOwnLease sees every change of this member's Lease in the view, and
// fences the member when the Lease it was seen to hold is deleted, or
// then held by another or by none.
func (m *Member) onOwnLease(lease *coordinationv1.Lease, deleted bool) {
	holder := ""
	if lease.Spec.HolderIdentity != nil {
		holder = *lease.Spec.HolderIdentity
	}
	var cause error
	m.mu.Lock()
	switch {
	case !deleted && holder == m.name:
		if !m.seenOwn {
			m.seenOwn, m.ownUID = true, lease.UID
			close(m.seenSelf)
		}
	case !m.seenOwn:
	case deleted && lease.UID == m.ownUID:
		cause = fmt.Errorf("%w: the Lease was deleted", ErrLost)
	case !deleted && holder == "":
		cause = fmt.Errorf("%w: the Lease was released", ErrLost)
	case !deleted:
		cause = fmt.Errorf("%w: the Lease is now held by %q", ErrLost, holder)
	}
	m.mu.Unlock()
	if cause != nil {
		m.fence(cause)
	}
}

// canceledAtDebug passes client-go's leader election logs on, those about
// a request cut short by the member's own stop (context.Canceled) at
// Debug: Leave and a loss cancel the renewal in flight, as they should.
type canceledAtDebug struct{ slog.Handler }

func (h canceledAtDebug) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug {
		canceled := false
		r.Attrs(func(a slog.Attr) bool {
			if err, ok := a.Value.Any().(error); ok && errors.Is(err, context.Canceled) {
				canceled = true
				return false
			}
			return true
		})
		if canceled {
			if !h.Handler.Enabled(ctx, slog.LevelDebug) {
				return nil
			}
			debug := slog.NewRecord(r.Time, slog.LevelDebug, r.Message, r.PC)
			r.Attrs(func(a slog.Attr) bool { debug.AddAttrs(a); return true })
			r = debug
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h canceledAtDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	return canceledAtDebug{h.Handler.WithAttrs(attrs)}
}

func (h canceledAtDebug) WithGroup(name string) slog.Handler {
	return canceledAtDebug{h.Handler.WithGroup(name)}
}

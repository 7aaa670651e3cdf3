package fleet

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// view is one replica's picture of the fleet: the Leases labelled with
// the worker's name, as one informer (one list, then one watch) delivers
// them, with the local time at which each Lease's record last changed.
// A member is live from the moment its record is seen to change until
// its Lease is deleted, released (no holder), or unchanged for its
// leaseDurationSeconds on the local clock, as in client-go's leader
// election: the holder's renewTime is compared, never trusted.
type view struct {
	clock  clock.Clock
	logger *slog.Logger
	inf    cache.SharedIndexInformer
	synced cache.DoneChecker // done once the first list has reached the handlers
	// own is called, outside mu, with every event on this member's own
	// Lease.
	own     func(lease *coordinationv1.Lease, deleted bool)
	ownName string // the name of this member's Lease

	kick    chan struct{} // wakes loop after an event; capacity 1
	changes chan struct{} // signalled when the live set changes; capacity 1

	mu      sync.Mutex
	leases  map[string]*record // by Lease name; guarded by mu
	lastErr error              // the last list or watch error; guarded by mu
}

// record is what the view keeps of one Lease.
type record struct {
	uid      types.UID
	holder   string
	renew    time.Time
	duration time.Duration
	seen     time.Time // local time the holder, renewTime or duration last changed
}

// expiry is when r stops counting as live.
func (r *record) expiry() time.Time {
	return r.seen.Add(r.duration)
}

// live reports whether r is a live member at now.
func (r *record) live(now time.Time) bool {
	return r.holder != "" && now.Before(r.expiry())
}

func newView(client kubernetes.Interface, opts Options, own func(*coordinationv1.Lease, bool)) (*view, error) {
	v := &view{
		clock:   opts.Clock,
		logger:  opts.Logger,
		own:     own,
		ownName: leaseName(opts.Worker, opts.Identity),
		kick:    make(chan struct{}, 1),
		changes: make(chan struct{}, 1),
		leases:  map[string]*record{},
	}
	sel := labels.Set{LabelWorker: opts.Worker}.String()
	leases := client.CoordinationV1().Leases(opts.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	v.inf = cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client),
		&coordinationv1.Lease{}, cache.SharedIndexInformerOptions{})
	if err := v.inf.SetWatchErrorHandlerWithContext(v.watchError); err != nil {
		return nil, err
	}
	reg, err := v.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    v.onChange,
		UpdateFunc: func(_, obj any) { v.onChange(obj) },
		DeleteFunc: v.onDelete,
	})
	if err != nil {
		return nil, err
	}
	v.synced = reg.HasSyncedChecker()
	return v, nil
}

// run runs the informer and the expiry loop until ctx ends.
func (v *view) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Go(func() { v.inf.RunWithContext(ctx) })
	wg.Go(func() { v.loop(ctx) })
}

// err returns the last list or watch error, or nil.
func (v *view) err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lastErr
}

// watchError keeps and logs why a list or watch failed; the reflector
// then backs off and retries on its own.
func (v *view) watchError(_ context.Context, _ *cache.Reflector, err error) {
	v.mu.Lock()
	v.lastErr = err
	v.mu.Unlock()
	switch {
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		v.logger.Debug("fleet: Lease watch expired (410 Gone); relisting")
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		v.logger.Warn("fleet: cannot list or watch Leases; the client needs list and watch on leases.coordination.k8s.io in the namespace", "err", err)
	default:
		v.logger.Debug("fleet: Lease list or watch failed; retrying", "err", err)
	}
}

func (v *view) onChange(obj any) {
	lease, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	spec := lease.Spec
	next := record{uid: lease.UID}
	if spec.HolderIdentity != nil {
		next.holder = *spec.HolderIdentity
	}
	if spec.RenewTime != nil {
		next.renew = spec.RenewTime.Time
	}
	if spec.LeaseDurationSeconds != nil {
		next.duration = time.Duration(*spec.LeaseDurationSeconds) * time.Second
	}
	v.mu.Lock()
	old := v.leases[lease.Name]
	if old == nil || old.uid != next.uid || old.holder != next.holder || !old.renew.Equal(next.renew) || old.duration != next.duration {
		next.seen = v.clock.Now()
		v.leases[lease.Name] = &next
	}
	v.mu.Unlock()
	v.wake()
	if lease.Name == v.ownName {
		v.own(lease, false)
	}
}

func (v *view) onDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	lease, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	v.mu.Lock()
	if r := v.leases[lease.Name]; r != nil && r.uid == lease.UID {
		delete(v.leases, lease.Name)
	}
	v.mu.Unlock()
	v.wake()
	if lease.Name == v.ownName {
		v.own(lease, true)
	}
}

// wake tells loop to look again.
func (v *view) wake() {
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// members returns the live members at now, sorted, and when the first of
// them expires (zero if none is live).
func (v *view) members(now time.Time) ([]string, time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var live []string
	var next time.Time
	for _, r := range v.leases {
		if !r.live(now) {
			continue
		}
		live = append(live, r.holder)
		if e := r.expiry(); next.IsZero() || e.Before(next) {
			next = e
		}
	}
	slices.Sort(live)
	return slices.Compact(live), next
}

// loop signals changes whenever the live set differs from the one it
// last saw: after each event, and by a timer at the next expiry, so a
// member that stops renewing drops out when its time is up, event or not.
func (v *view) loop(ctx context.Context) {
	var last []string
	for {
		now := v.clock.Now()
		live, next := v.members(now)
		if !slices.Equal(live, last) {
			last = live
			select {
			case v.changes <- struct{}{}:
			default:
			}
		}
		var expired <-chan time.Time
		var timer clock.Timer
		if !next.IsZero() {
			timer = v.clock.NewTimer(next.Sub(now))
			expired = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-v.kick:
		case <-expired:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

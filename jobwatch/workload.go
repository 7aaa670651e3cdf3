package jobwatch

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// workloadJobIndex indexes Workloads by the UID of their Job.
const workloadJobIndex = "jobUID"

// workloadStream is a namespace's shared informer of Kueue Workloads,
// opened by the first Wait there that follows a Job with a queue-name
// label and run, like the Job and pod informers, until Watcher.Close. It
// lists and watches the Workloads that carry Kueue's job-uid label (every
// Workload of a Job has it), trims each to a kueueWorkload and indexes
// them by their Job's UID. Its reflector relists after 410 Gone and
// watches again after a dropped connection, as the others do.
//
// When the Workload API is not served (Kueue not installed: a list
// answers NotFound for every version), the stream says so once in the
// log and keeps retrying with the reflector's back-off (from 0.8 s,
// doubling, to 30 s, with jitter), so a Kueue installed later is found;
// Waits meanwhile follow their Jobs as plain suspended Jobs.
type workloadStream struct {
	s      *stream
	inf    cache.SharedIndexInformer
	synced cache.DoneChecker
	lw     *streamLW

	version   atomic.Int32 // index in workloadGVRs of the version that answered last
	notServed atomic.Bool  // the last list found no version of the API
	said      sync.Map     // log lines said once, by kind
}

// workloads returns the namespace's Workload stream, opening it on first
// use; nil when the Watcher has no dynamic client (Kueue is not
// followed) or is closed.
func (s *stream) workloads() *workloadStream {
	if s.w.dyn == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wls != nil {
		return s.wls
	}
	ws := newWorkloadStream(s)
	if !s.w.goroutine(func() { ws.inf.RunWithContext(s.w.ctx) }) {
		return nil
	}
	s.wls = ws
	return ws
}

func newWorkloadStream(s *stream) *workloadStream {
	ws := &workloadStream{s: s}
	ws.lw = &streamLW{resource: "workloads", w: s.w, client: s.w.dyn, list: ws.list, watch: ws.watch}
	ws.inf = cache.NewSharedIndexInformerWithOptions(ws.lw.listerWatcher(), &unstructured.Unstructured{},
		cache.SharedIndexInformerOptions{ResyncPeriod: s.w.opts.ResyncPeriod, Indexers: cache.Indexers{workloadJobIndex: indexByJobUID}})
	// These fail only once the informer has started, which it has not.
	_ = ws.inf.SetTransform(trimWorkload)
	_ = ws.inf.SetWatchErrorHandlerWithContext(ws.watchError)
	_, _ = ws.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.onWorkload(obj) },
		UpdateFunc: func(_, obj any) { s.onWorkload(obj) },
		DeleteFunc: func(obj any) { s.onWorkload(obj) },
	})
	ws.synced = ws.inf.HasSyncedChecker()
	return ws
}

// list lists the namespace's Workloads of Jobs in the version that
// answered last, and in the others if that one is not served.
func (ws *workloadStream) list(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	o.LabelSelector = labelJobUID
	first := int(ws.version.Load())
	var err error
	for i := range workloadGVRs {
		v := (first + i) % len(workloadGVRs)
		var list runtime.Object
		list, err = ws.s.w.dyn.Resource(workloadGVRs[v]).Namespace(ws.s.ns).List(ctx, o)
		if err == nil {
			ws.version.Store(int32(v))
			if ws.notServed.Swap(false) {
				ws.s.w.logger.Info("jobwatch: Kueue's Workload API is served now; following the Workloads of queued Jobs", "namespace", ws.s.ns, "version", workloadGVRs[v].Version)
			}
			return list, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	if !ws.notServed.Swap(true) {
		ws.once("notServed", func() {
			ws.s.w.logger.Info("jobwatch: Kueue's Workload API is not served (is Kueue installed?); Jobs with a queue-name label are followed as plain suspended Jobs",
				"namespace", ws.s.ns, "err", err)
		})
	}
	return nil, err
}

// watch watches the Workloads in the version that listed last.
func (ws *workloadStream) watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	o.LabelSelector = labelJobUID
	return ws.s.w.dyn.Resource(workloadGVRs[ws.version.Load()]).Namespace(ws.s.ns).Watch(ctx, o)
}

// watchError logs why a list or watch of Workloads failed; the reflector
// then backs off and retries.
func (ws *workloadStream) watchError(_ context.Context, _ *cache.Reflector, err error) {
	log := ws.s.w.logger.With("namespace", ws.s.ns, "type", "workloads", "err", err)
	switch {
	case apierrors.IsNotFound(err):
		// Said once by list.
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		ws.once("forbidden", func() {
			log.Warn("jobwatch: cannot list or watch Kueue's Workloads; the client needs list and watch on workloads.kueue.x-k8s.io in this namespace; queued Jobs are followed as plain suspended Jobs meanwhile")
		})
	case isExpired(err):
		log.Debug("jobwatch: watch expired (410 Gone); relisting")
	default:
		log.Debug("jobwatch: list or watch failed; retrying")
	}
}

// once runs f the first time it is called with kind.
func (ws *workloadStream) once(kind string, f func()) {
	if _, said := ws.said.LoadOrStore(kind, true); !said {
		f()
	}
}

// usable reports whether the stream can be trusted about a Workload's
// absence: it has synced and the API is served.
func (ws *workloadStream) usable() bool {
	return ws != nil && cache.IsDone(ws.synced) && !ws.notServed.Load()
}

// of returns the Workload of the Job with uid, nil if none is cached:
// of several (Kueue makes a new one if the first is deleted), the newest
// that has not finished, else the newest.
func (ws *workloadStream) of(uid types.UID) *kueueWorkload {
	if ws == nil || uid == "" {
		return nil
	}
	objs, err := ws.inf.GetIndexer().ByIndex(workloadJobIndex, string(uid))
	if err != nil {
		return nil
	}
	var all []*kueueWorkload
	for _, o := range objs {
		if wl, ok := o.(*kueueWorkload); ok {
			all = append(all, wl)
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortFunc(all, func(a, b *kueueWorkload) int {
		if fa, fb := a.is(condFinished), b.is(condFinished); fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), cmp.Compare(a.Name, b.Name))
	})
	return all[len(all)-1]
}

// indexByJobUID indexes a trimmed Workload by its Job's UID.
func indexByJobUID(obj any) ([]string, error) {
	if wl, ok := obj.(*kueueWorkload); ok {
		if uid := wl.jobUID(); uid != "" {
			return []string{string(uid)}, nil
		}
	}
	return nil, nil
}

// onWorkload hands a Workload's new state to the waiters of its Job.
func (s *stream) onWorkload(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	wl, ok := obj.(*kueueWorkload)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for wt := range s.byJobUID[wl.jobUID()] {
		wt.workloadChanged(wl)
	}
}

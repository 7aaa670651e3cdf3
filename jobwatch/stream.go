package jobwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/kubeworker/kubeworker/manifest"
)

// jobIndex indexes pods by their Job's name; runIndex Jobs by run ID.
const (
	jobIndex = "job"
	runIndex = "run"
)

// stream is one namespace's shared pair of informers (Jobs and pods)
// and the waiters they feed. The informers' reflectors list, then watch
// from the list's resourceVersion; on 410 Gone they relist and resume;
// on a dropped connection they watch again from the last version seen.
// A relist delivers objects deleted meanwhile as DeletedFinalStateUnknown.
type stream struct {
	ns     string
	w      *Watcher
	jobs   cache.SharedIndexInformer
	pods   cache.SharedIndexInformer
	synced []cache.DoneChecker
	lws    []*streamLW // the informers' ListerWatchers, jobs then pods

	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{} // by Job name; guarded by mu
	lastErr error                           // the last list or watch error; guarded by mu
	wls     *workloadStream                 // Kueue's Workloads, once a Wait needs them; guarded by mu
	// byJobUID are the waiters that follow Kueue, by their Job's UID,
	// which is all a Workload says of its Job for sure; guarded by mu.
	byJobUID map[types.UID]map[*waiter]struct{}
}

func newStream(w *Watcher, ns string) (*stream, error) {
	s := &stream{ns: ns, w: w, waiters: map[string]map[*waiter]struct{}{}}
	sel := w.sel.String()
	jobs := &streamLW{resource: "jobs", w: w,
		list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return w.client.BatchV1().Jobs(ns).List(ctx, o)
		},
		watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return w.client.BatchV1().Jobs(ns).Watch(ctx, o)
		},
	}
	pods := &streamLW{resource: "pods", w: w,
		list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return w.client.CoreV1().Pods(ns).List(ctx, o)
		},
		watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return w.client.CoreV1().Pods(ns).Watch(ctx, o)
		},
	}
	s.lws = []*streamLW{jobs, pods}
	s.jobs = cache.NewSharedIndexInformerWithOptions(jobs.listerWatcher(), &batchv1.Job{},
		cache.SharedIndexInformerOptions{ResyncPeriod: w.opts.ResyncPeriod, Indexers: cache.Indexers{runIndex: indexByRun}})
	s.pods = cache.NewSharedIndexInformerWithOptions(pods.listerWatcher(), &corev1.Pod{},
		cache.SharedIndexInformerOptions{ResyncPeriod: w.opts.ResyncPeriod, Indexers: cache.Indexers{jobIndex: indexByJob}})
	handlers := []cache.ResourceEventHandler{
		cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.onJob(obj, false) },
			UpdateFunc: replaced(s.onJob),
			DeleteFunc: func(obj any) { s.onJob(obj, true) },
		},
		cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.onPod(obj, false) },
			UpdateFunc: replaced(s.onPod),
			DeleteFunc: func(obj any) { s.onPod(obj, true) },
		},
	}
	for i, inf := range []cache.SharedIndexInformer{s.jobs, s.pods} {
		if err := inf.SetTransform(trimmer(w.sel)); err != nil {
			return nil, fmt.Errorf("jobwatch: set up informer: %w", err)
		}
		if err := inf.SetWatchErrorHandlerWithContext(s.watchError); err != nil {
			return nil, fmt.Errorf("jobwatch: set up informer: %w", err)
		}
		if _, err := inf.AddEventHandler(handlers[i]); err != nil {
			return nil, fmt.Errorf("jobwatch: set up informer: %w", err)
		}
		s.synced = append(s.synced, inf.HasSyncedChecker())
	}
	return s, nil
}

// start runs both informers in goroutines started by goroutine.
func (s *stream) start(goroutine func(func())) {
	for _, inf := range []cache.SharedIndexInformer{s.jobs, s.pods} {
		goroutine(func() { inf.RunWithContext(s.w.ctx) })
	}
}

// watchError logs why a list or watch failed; the reflector then backs
// off and retries on its own.
func (s *stream) watchError(_ context.Context, r *cache.Reflector, err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	log := s.w.logger.With("namespace", s.ns, "type", r.TypeDescription(), "err", err)
	switch {
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		log.Debug("jobwatch: watch expired (410 Gone); relisting")
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		log.Warn("jobwatch: cannot list or watch; the client needs get, list and watch on jobs and pods, and list on events, in this namespace")
	default:
		log.Debug("jobwatch: list or watch failed; retrying")
	}
}

// syncing returns a channel closed when the first informer not yet
// synced is, or nil once both are.
func (s *stream) syncing() <-chan struct{} {
	for _, c := range s.synced {
		if !cache.IsDone(c) {
			return c.Done()
		}
	}
	return nil
}

// waitSynced blocks until the first n informers (1: Jobs; 2: Jobs and
// pods) have synced. It fails with the stream's error as soon as giveUp
// says that error is final, when ctx ends, and with ErrClosed when the
// Watcher is closed.
func (s *stream) waitSynced(ctx context.Context, n int, giveUp func(error) bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; {
		if cache.IsDone(s.synced[i]) {
			i++
			continue
		}
		if err := s.lws[i].failingErr(); err != nil && giveUp(err) {
			return fmt.Errorf("jobwatch: the %s of namespace %s: %w", s.lws[i].resource, s.ns, err)
		}
		select {
		case <-s.synced[i].Done():
		case <-tick.C:
		case <-ctx.Done():
			if err := s.syncErr(); err != nil {
				return errors.Join(ctx.Err(), err)
			}
			return ctx.Err()
		case <-s.w.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

// err returns the last list or watch error, or nil.
func (s *stream) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// syncErr returns nil when both informers have synced and their last
// list or watch request succeeded; else why not.
func (s *stream) syncErr() error {
	var errs []error
	for i, lw := range s.lws {
		switch err := lw.failingErr(); {
		case !cache.IsDone(s.synced[i]) && err != nil:
			errs = append(errs, fmt.Errorf("namespace %s: %s not synced: %w", s.ns, lw.resource, err))
		case !cache.IsDone(s.synced[i]):
			errs = append(errs, fmt.Errorf("namespace %s: %s not synced yet", s.ns, lw.resource))
		case err != nil:
			errs = append(errs, fmt.Errorf("namespace %s: the %s stream is failing: %w", s.ns, lw.resource, err))
		}
	}
	// Kueue's Workloads, once a queued Job opened their stream: a failing
	// stream (Forbidden, say) is reported; a cluster without Kueue is not.
	s.mu.Lock()
	ws := s.wls
	s.mu.Unlock()
	if ws != nil && !ws.notServed.Load() {
		if err := ws.lw.failingErr(); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: the workloads stream is failing: %w", s.ns, err))
		}
	}
	return errors.Join(errs...)
}

// indexByRun indexes a trimmed Job by the run ID of its pod template,
// which manifest.Prepare copies from the Job's labels (the trimmed Job
// keeps no others).
func indexByRun(obj any) ([]string, error) {
	if job, ok := obj.(*batchv1.Job); ok {
		if id := job.Spec.Template.Labels[manifest.LabelRunID]; id != "" {
			return []string{id}, nil
		}
	}
	return nil, nil
}

func indexByJob(obj any) ([]string, error) {
	if pod, ok := obj.(*corev1.Pod); ok {
		if name := podJobName(pod); name != "" {
			return []string{name}, nil
		}
	}
	return nil, nil
}

// register adds a waiter for the Job named name. record asks it to keep
// every pod state delivered, for events.
func (s *stream) register(name string, record bool) *waiter {
	wt := newWaiter(name, record)
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.waiters[name]
	if set == nil {
		set = map[*waiter]struct{}{}
		s.waiters[name] = set
	}
	set[wt] = struct{}{}
	return wt
}

func (s *stream) unregister(wt *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters[wt.job], wt)
	if len(s.waiters[wt.job]) == 0 {
		delete(s.waiters, wt.job)
	}
	if uid := wt.kueueJob; uid != "" {
		delete(s.byJobUID[uid], wt)
		if len(s.byJobUID[uid]) == 0 {
			delete(s.byJobUID, uid)
		}
	}
}

// followKueue makes the Workload stream hand the waiter the states of
// the Workloads of the Job with uid.
func (s *stream) followKueue(wt *waiter, uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byJobUID == nil {
		s.byJobUID = map[types.UID]map[*waiter]struct{}{}
	}
	if s.byJobUID[uid] == nil {
		s.byJobUID[uid] = map[*waiter]struct{}{}
	}
	s.byJobUID[uid][wt] = struct{}{}
	wt.kueueJob = uid
}

// onJob hands a Job change to its waiters. It runs on the informer's
// delivery goroutine and must be quick.
func (s *stream) onJob(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	job, ok := obj.(*batchv1.Job)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for wt := range s.waiters[job.Name] {
		wt.jobChanged(job, deleted)
	}
}

// replaced makes an update handler of on that, when the object under a
// name is another one (a new UID), first reports the old one deleted. A
// relist after a 410, or after a watch the API server refused, matches
// objects by name only: an object deleted and made again under its name
// while the stream was down comes as an update of the old one.
func replaced(on func(obj any, deleted bool)) func(old, obj any) {
	return func(old, obj any) {
		o, ok1 := old.(metav1.Object)
		n, ok2 := obj.(metav1.Object)
		if ok1 && ok2 && o.GetUID() != n.GetUID() {
			on(old, true)
		}
		on(obj, false)
	}
}

// onPod hands a pod change to the waiters of its Job.
func (s *stream) onPod(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, deleted = t.Obj, true
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	name := podJobName(pod)
	if name == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for wt := range s.waiters[name] {
		wt.podChanged(pod, deleted)
	}
}

// cachedJob returns the cached Job of that name, or nil.
func (s *stream) cachedJob(name string) *batchv1.Job {
	obj, ok, err := s.jobs.GetIndexer().GetByKey(s.ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	job, _ := obj.(*batchv1.Job)
	return job
}

// cachedPods returns the cached pods controlled by the Job of that name.
func (s *stream) cachedPods(name string) []*corev1.Pod {
	objs, err := s.pods.GetIndexer().ByIndex(jobIndex, name)
	if err != nil {
		return nil
	}
	pods := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		if pod, ok := obj.(*corev1.Pod); ok {
			pods = append(pods, pod)
		}
	}
	return pods
}

// streamLW lists and watches one resource of a stream for its
// informer, and tells the Recorder what the reflector does not: which
// list or watch after the first is a relist or a restart, and whether a
// 410 Gone came before it. It also keeps whether the last list or watch
// request failed, for Watcher.Synced. The client's transport counts the
// requests themselves.
//
// A reflector syncs with a list, or (client-go's WatchListClient, on by
// default) with a watch that sends the initial events and marks their
// end with a bookmark, falling back to a list if the server cannot; it
// then watches from the last version seen, and syncs again after a watch
// error (410 Gone among them, which arrives as a watch event and never
// reaches the informer's WatchErrorHandler).
type streamLW struct {
	resource string // "jobs", "pods" or "workloads"
	w        *Watcher
	list     func(context.Context, metav1.ListOptions) (runtime.Object, error)
	watch    func(context.Context, metav1.ListOptions) (watch.Interface, error)
	// client is the client whose support of watch-list semantics the
	// reflector checks (a fake's is off); nil: the Watcher's clientset.
	client any

	// lastEvent is when the watch last delivered an object, or a list or
	// watch request last began or ended (Unix ns, the Watcher's clock).
	lastEvent atomic.Int64
	// inFlight counts list and watch requests under way.
	inFlight atomic.Int32

	mu      sync.Mutex
	listed  bool  // a sync has completed; guarded by mu
	watched bool  // a watch has been opened; guarded by mu
	expired bool  // a 410 Gone came since the last sync; guarded by mu
	failing error // the last list or watch request's error, nil after a success; guarded by mu
}

// listerWatcher returns the ListerWatcher for an informer.
func (l *streamLW) listerWatcher() cache.ListerWatcher {
	client := l.client
	if client == nil {
		client = l.w.client
	}
	return cache.ToListWatcherWithWatchListSemantics(
		&cache.ListWatch{ListWithContextFunc: l.listObjects, WatchFuncWithContext: l.watchObjects}, client)
}

func (l *streamLW) listObjects(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	defer l.request()()
	obj, err := l.list(ctx, opts)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failing, l.expired = err, l.expired || isExpired(err)
		return nil, err
	}
	l.syncedLocked()
	return obj, nil
}

func (l *streamLW) watchObjects(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	initial := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	l.mu.Lock()
	if l.watched {
		l.w.rec.WatchRestart(l.resource)
	}
	l.watched = true
	l.mu.Unlock()
	done := l.request()
	wi, err := l.watch(ctx, opts)
	done()
	l.mu.Lock()
	if err != nil {
		l.expired = l.expired || isExpired(err)
		if !initial { // a failed watch-list falls back to a list, which tells
			l.failing = err
		}
		l.mu.Unlock()
		return nil, err
	}
	if !initial {
		l.failing = nil
	}
	l.mu.Unlock()
	pw := &peekWatch{in: wi, out: make(chan watch.Event), stop: make(chan struct{})}
	if !l.w.goroutine(func() { pw.run(l.seen) }) {
		wi.Stop()
		return nil, ErrClosed
	}
	return pw, nil
}

// seen looks at each watch event on its way to the reflector.
func (l *streamLW) seen(e watch.Event) {
	switch e.Type {
	case watch.Added, watch.Modified, watch.Deleted:
		l.lastEvent.Store(l.w.clock.Now().UnixNano())
	case watch.Error:
		if isExpired(apierrors.FromObject(e.Object)) {
			l.mu.Lock()
			l.expired = true
			l.mu.Unlock()
		}
	case watch.Bookmark:
		if m, err := meta.Accessor(e.Object); err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true" {
			l.mu.Lock()
			l.syncedLocked()
			l.mu.Unlock()
		}
	}
}

// syncedLocked notes a completed sync, a relist unless it is the first.
func (l *streamLW) syncedLocked() {
	if l.listed {
		l.w.rec.Relist(l.resource, l.expired)
	}
	l.listed, l.expired, l.failing = true, false, nil
}

// request notes a list or watch request beginning; the function it
// returns notes its end. Both count as the stream's activity: a watch just
// (re)opened is a stream catching up, busy until it has been quiet a while.
func (l *streamLW) request() (done func()) {
	l.inFlight.Add(1)
	l.lastEvent.Store(l.w.clock.Now().UnixNano())
	return func() {
		l.lastEvent.Store(l.w.clock.Now().UnixNano())
		l.inFlight.Add(-1)
	}
}

// busy reports whether the stream is catching up: a list or watch request
// is under way, the last one failed (the reflector retries it), or the
// watch delivered an object, or a request began or ended, within d of now.
// A stream that is busy may still be on its way to an object it has not
// cached; one that has been quiet for d with its watch open is not.
func (l *streamLW) busy(d time.Duration) bool {
	if l.inFlight.Load() > 0 || l.failingErr() != nil {
		return true
	}
	last := l.lastEvent.Load()
	return last != 0 && l.w.clock.Since(time.Unix(0, last)) < d
}

func (l *streamLW) failingErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failing
}

func isExpired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// peekWatch passes the events of a watch on, showing each to a func
// first. Unlike watch.Filter, its goroutine ends at Stop even when
// nobody reads the rest.
type peekWatch struct {
	in   watch.Interface
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func (p *peekWatch) ResultChan() <-chan watch.Event { return p.out }

func (p *peekWatch) Stop() {
	p.once.Do(func() { close(p.stop) })
	p.in.Stop()
}

func (p *peekWatch) run(see func(watch.Event)) {
	defer close(p.out)
	for {
		select {
		case e, ok := <-p.in.ResultChan():
			if !ok {
				return
			}
			see(e)
			select {
			case p.out <- e:
			case <-p.stop:
				return
			}
		case <-p.stop:
			return
		}
	}
}

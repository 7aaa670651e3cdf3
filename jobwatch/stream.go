package jobwatch

import (
	"context"
	"fmt"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	batchinformers "k8s.io/client-go/informers/batch/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// jobIndex indexes cached pods by the name of the Job that controls them.
const jobIndex = "job"

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

	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{} // by Job name; guarded by mu
	lastErr error                           // the last list or watch error; guarded by mu
}

func newStream(w *Watcher, ns string) (*stream, error) {
	s := &stream{ns: ns, w: w, waiters: map[string]map[*waiter]struct{}{}}
	tweak := func(o *metav1.ListOptions) { o.LabelSelector = w.sel.String() }
	s.jobs = batchinformers.NewFilteredJobInformer(w.client, ns, w.opts.ResyncPeriod, cache.Indexers{}, tweak)
	s.pods = coreinformers.NewFilteredPodInformer(w.client, ns, w.opts.ResyncPeriod, cache.Indexers{jobIndex: indexByJob}, tweak)
	handlers := []cache.ResourceEventHandler{
		cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.onJob(obj, false) },
			UpdateFunc: func(_, obj any) { s.onJob(obj, false) },
			DeleteFunc: func(obj any) { s.onJob(obj, true) },
		},
		cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.onPod(obj, false) },
			UpdateFunc: func(_, obj any) { s.onPod(obj, false) },
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

// err returns the last list or watch error, or nil.
func (s *stream) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
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

package jobwatch

import (
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// waiter is one Wait's registration with a stream. The informer's
// handlers only record what the cache can no longer tell (the last state
// of deleted objects; pod states for events) and wake the Wait, which
// then reads the current state: level-driven, never edge-driven.
type waiter struct {
	job    string
	record bool
	wake   chan struct{} // capacity 1: wakes coalesce

	mu          sync.Mutex
	deletedJobs map[types.UID]*batchv1.Job // last state of deleted Jobs of this name; guarded by mu
	deletedPods map[types.UID]*corev1.Pod  // last state of deleted pods; guarded by mu
	snaps       []*corev1.Pod              // pod states as delivered, if record; guarded by mu
	workloads   []*kueueWorkload           // Workload states as delivered; guarded by mu

	kueueJob types.UID // the Job whose Workloads it follows; guarded by the stream's mu
}

func newWaiter(job string, record bool) *waiter {
	return &waiter{job: job, record: record, wake: make(chan struct{}, 1)}
}

func (w *waiter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *waiter) jobChanged(job *batchv1.Job, deleted bool) {
	if deleted {
		w.mu.Lock()
		if w.deletedJobs == nil {
			w.deletedJobs = map[types.UID]*batchv1.Job{}
		}
		w.deletedJobs[job.UID] = job
		w.mu.Unlock()
	}
	w.poke()
}

func (w *waiter) podChanged(pod *corev1.Pod, deleted bool) {
	if deleted || w.record {
		w.mu.Lock()
		if deleted {
			if w.deletedPods == nil {
				w.deletedPods = map[types.UID]*corev1.Pod{}
			}
			w.deletedPods[pod.UID] = pod
		}
		if w.record {
			w.snaps = append(w.snaps, pod)
		}
		w.mu.Unlock()
	}
	w.poke()
}

// workloadChanged records a new state of the Workload of the Job the
// waiter follows in Kueue, and wakes it: a Workload goes through states
// (evicted, requeued) faster than a Wait may look, and each is an event.
func (w *waiter) workloadChanged(wl *kueueWorkload) {
	w.mu.Lock()
	w.workloads = append(w.workloads, wl)
	w.mu.Unlock()
	w.poke()
}

// takeWorkloads returns and forgets the Workload states recorded so far.
func (w *waiter) takeWorkloads() []*kueueWorkload {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.workloads
	w.workloads = nil
	return s
}

// deleted returns the last state of the Job with uid if it was deleted,
// and the last states of deleted pods.
func (w *waiter) deleted(uid types.UID) (*batchv1.Job, map[types.UID]*corev1.Pod) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pods := make(map[types.UID]*corev1.Pod, len(w.deletedPods))
	for k, v := range w.deletedPods {
		pods[k] = v
	}
	return w.deletedJobs[uid], pods
}

// takeSnaps returns and forgets the pod states recorded so far.
func (w *waiter) takeSnaps() []*corev1.Pod {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.snaps
	w.snaps = nil
	return s
}

package soak

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// labelRunID is the label kubeworker documents on every Job it makes,
// holding the run's ID; the checker reads nothing else of kubeworker's.
const labelRunID = "kubeworker.io/run-id"

// Checker records the truth of a soak with raw watches of its own, apart
// from the code under test: every Job ever added in the soak's
// namespaces and how every pod ended. Its watches resume from the last
// resourceVersion they saw after a dropped connection or an API server
// restart, and list again after a 410 Gone.
type Checker struct {
	client     kubernetes.Interface
	namespaces map[string]bool

	mu   sync.Mutex
	jobs map[types.UID]*JobTruth
	pods map[types.UID]*PodTruth
	seq  int
	// relists counts the lists, at the start and after a 410 Gone.
	relists int
}

// JobTruth is a Job as the checker saw it.
type JobTruth struct {
	Namespace, Name, RunID string
	UID                    types.UID
	// Deleted: its deletion began or it is gone; Finished: it had a
	// Complete or Failed condition first.
	Deleted, Finished bool
}

// PodTruth is a pod of a Job as the checker saw it.
type PodTruth struct {
	Namespace, Name string
	Job             types.UID
	// Ran: a container started. Phase is the last seen, ExitCode the run
	// container's terminated code (-1 until it has one), Reason the pod's
	// or the container's terminated reason.
	Ran      bool
	Seq      int // the order the checker first saw the Job's pods in
	Phase    corev1.PodPhase
	ExitCode int32
	Reason   string
}

// NewChecker returns a Checker of the Jobs and pods in namespaces;
// client should reach the API server directly, not through a fault
// proxy.
func NewChecker(client kubernetes.Interface, namespaces ...string) *Checker {
	c := &Checker{client: client, namespaces: map[string]bool{}, jobs: map[types.UID]*JobTruth{}, pods: map[types.UID]*PodTruth{}}
	for _, ns := range namespaces {
		c.namespaces[ns] = true
	}
	return c
}

// Run watches until ctx ends.
func (c *Checker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		c.follow(ctx, "jobs",
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.client.BatchV1().Jobs("").List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.client.BatchV1().Jobs("").Watch(ctx, o)
			})
	})
	wg.Go(func() {
		c.follow(ctx, "pods",
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.client.CoreV1().Pods("").List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.client.CoreV1().Pods("").Watch(ctx, o)
			})
	})
	wg.Wait()
}

// follow lists and watches one resource until ctx ends.
func (c *Checker) follow(ctx context.Context, what string,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFrom func(context.Context, metav1.ListOptions) (watch.Interface, error)) {
	rv := ""
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
			return true
		}
	}
	for ctx.Err() == nil {
		if rv == "" {
			l, err := list(ctx, metav1.ListOptions{})
			if err != nil {
				if !pause() {
					return
				}
				continue
			}
			items, _ := meta.ExtractList(l)
			for _, o := range items {
				c.record(watch.Added, o)
			}
			lm, _ := meta.ListAccessor(l)
			rv = lm.GetResourceVersion()
			c.mu.Lock()
			c.relists++
			c.mu.Unlock()
		}
		w, err := watchFrom(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				rv = ""
			}
			if !pause() {
				return
			}
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				if st, ok := ev.Object.(*metav1.Status); ok && st.Code == http.StatusGone {
					rv = ""
				}
				break
			}
			if m, err := meta.Accessor(ev.Object); err == nil {
				rv = m.GetResourceVersion()
			}
			if ev.Type != watch.Bookmark {
				c.record(ev.Type, ev.Object)
			}
		}
		w.Stop()
	}
}

func (c *Checker) record(t watch.EventType, o runtime.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch o := o.(type) {
	case *batchv1.Job:
		if !c.namespaces[o.Namespace] {
			return
		}
		j := c.jobs[o.UID]
		if j == nil {
			j = &JobTruth{Namespace: o.Namespace, Name: o.Name, RunID: o.Labels[labelRunID], UID: o.UID}
			c.jobs[o.UID] = j
		}
		for _, cond := range o.Status.Conditions {
			if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue && !j.Deleted {
				j.Finished = true
			}
		}
		if t == watch.Deleted || o.DeletionTimestamp != nil {
			j.Deleted = true
		}
	case *corev1.Pod:
		if !c.namespaces[o.Namespace] {
			return
		}
		p := c.pods[o.UID]
		if p == nil {
			c.seq++
			p = &PodTruth{Namespace: o.Namespace, Name: o.Name, ExitCode: -1, Seq: c.seq}
			for _, ref := range o.OwnerReferences {
				if ref.Kind == "Job" {
					p.Job = ref.UID
				}
			}
			c.pods[o.UID] = p
		}
		if o.Status.Phase != "" {
			p.Phase = o.Status.Phase
		}
		if o.Status.Reason != "" {
			p.Reason = o.Status.Reason
		}
		for _, s := range o.Status.ContainerStatuses {
			if s.State.Running != nil || s.State.Terminated != nil {
				p.Ran = true
			}
			if term := s.State.Terminated; term != nil && s.Name == "run" {
				p.ExitCode = term.ExitCode
				if p.Reason == "" {
					p.Reason = term.Reason
				}
			}
		}
	}
}

func (c *Checker) lists() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.relists
}

// Jobs returns a copy of every Job the checker saw, by run ID.
func (c *Checker) Jobs() map[string][]JobTruth {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]JobTruth{}
	for _, j := range c.jobs {
		out[j.RunID] = append(out[j.RunID], *j)
	}
	return out
}

// Pods returns a copy of every pod the checker saw, by its Job's UID.
func (c *Checker) Pods() map[types.UID][]PodTruth {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[types.UID][]PodTruth{}
	for _, p := range c.pods {
		out[p.Job] = append(out[p.Job], *p)
	}
	return out
}

// errNoTruth is returned by Job when the checker saw no Job of a run.
var errNoTruth = errors.New("the checker saw no Job of the run")

// jobOf returns the one Job of runID in ns the checker saw.
func jobOf(jobs map[string][]JobTruth, ns, runID string) (JobTruth, error) {
	var found []JobTruth
	for _, j := range jobs[runID] {
		if j.Namespace == ns {
			found = append(found, j)
		}
	}
	switch len(found) {
	case 0:
		return JobTruth{}, errNoTruth
	case 1:
		return found[0], nil
	}
	return found[0], fmt.Errorf("%d Jobs ever for the run (%v)", len(found), found)
}

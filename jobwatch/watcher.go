package jobwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kubeworker/kubeworker/metrics"
)

// Watcher follows Jobs to their Results. It keeps, per namespace in
// which it has been asked to wait, one list+watch stream of Jobs and one
// of pods, filtered by Options.Selector and shared by every Wait in that
// namespace; see the package doc. Its methods are safe for concurrent use.
type Watcher struct {
	client kubernetes.Interface
	opts   Options
	sel    labels.Selector
	logger *slog.Logger
	clock  clock.WithTicker
	rec    metrics.Recorder
	dyn    dynamic.Interface // reads Kueue's Workloads; nil: Kueue is not followed
	pos    *positions        // reads queue positions; nil: not read

	// ctx ends at Close; it carries the Logger for client-go's klog.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	streams map[string]*stream // by namespace; guarded by mu
	closed  bool               // guarded by mu
	wg      sync.WaitGroup     // informers and log followers; Add only under mu while !closed
}

// New returns a Watcher that reads the cluster through client. It starts
// nothing: the streams of a namespace start with the first Wait there.
// Call Close when done.
func New(client kubernetes.Interface, opts Options) *Watcher {
	w := &Watcher{
		client:  client,
		opts:    opts,
		sel:     opts.selector(),
		logger:  opts.logger(),
		clock:   opts.clock(),
		rec:     metrics.OrDiscard(opts.Metrics),
		dyn:     opts.Dynamic,
		streams: map[string]*stream{},
	}
	if w.dyn == nil {
		w.dyn = dynamicFor(client)
	}
	w.pos = newPositions(w)
	ctx := klog.NewContext(context.Background(), logr.FromSlogHandler(w.logger.Handler()))
	w.ctx, w.cancel = context.WithCancel(ctx)
	return w
}

// Close stops every stream and log follower and waits for their
// goroutines to end. Waits in progress return ErrClosed; later ones fail
// with it at once. Close does not touch any Job. Calling it again does
// nothing.
func (w *Watcher) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
}

// Synced returns nil when every shared stream the Watcher runs is in
// step with the API server: both its informers (Jobs and pods) have
// filled their cache, and the last list or watch request of each
// succeeded. Otherwise the error names each namespace and resource that
// is not, with the cause when one is known (Forbidden, a refused
// connection). A Watcher that runs no stream yet (no Wait so far) is
// synced; a closed one returns ErrClosed. Serve it as a readiness check:
// worker's Agent.HealthHandler does. It does not block. A stream of
// Kueue's Workloads (opened by a queued Job) counts when its last list
// or watch failed (Forbidden, say: queued Jobs are then followed as
// plain suspended ones, without Kueue's diagnoses), but not when the
// cluster does not serve Kueue's API at all.
func (w *Watcher) Synced() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	streams := make([]*stream, 0, len(w.streams))
	for _, s := range w.streams {
		streams = append(streams, s)
	}
	w.mu.Unlock()
	sort.Slice(streams, func(i, j int) bool { return streams[i].ns < streams[j].ns })
	var errs []error
	for _, s := range streams {
		if err := s.syncErr(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("jobwatch: watch streams not synced: %w", err)
	}
	return nil
}

// WaitForSync starts the shared streams of the namespaces, if they have
// not started, and blocks until each has filled its cache of Jobs and pods,
// as a controller waits for its caches before taking work. Waits and
// RunJobs in those namespaces then begin from a synced cache instead of
// waiting for it. It returns early, with the cause, when listing or
// watching there is refused (Forbidden or Unauthorized), and with ctx's
// error joined with what has not synced when ctx ends first. Calling it
// is optional: a stream starts at its namespace's first Wait anyway.
func (w *Watcher) WaitForSync(ctx context.Context, namespaces ...string) error {
	streams := make([]*stream, 0, len(namespaces))
	for _, ns := range namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return fmt.Errorf("%w: namespace %q: %s", ErrInvalidRef, ns, strings.Join(msgs, "; "))
		}
		s, err := w.stream(ns)
		if err != nil {
			return err
		}
		streams = append(streams, s)
	}
	for _, s := range streams {
		if err := s.waitSynced(ctx, len(s.synced), refused); err != nil {
			return err
		}
	}
	return nil
}

// refused says whether a list or watch error will last until someone
// changes the cluster's permissions or the client's credentials.
func refused(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
}

// observeEnd records, once a Wait has its Result, how long the Job took
// from its creation to its first pod's run container start, and how long
// the Result took to come after the run container's end. pods are the
// Job's; container names the run container ("": each pod's first).
// Nothing is recorded for what did not happen.
func (w *Watcher) observeEnd(job *batchv1.Job, pods []*corev1.Pod, container string) {
	var start, end time.Time
	for _, p := range pods {
		s := containerStatus(p, runContainer(p, container))
		if s == nil {
			continue
		}
		var started time.Time
		switch {
		case s.State.Running != nil:
			started = s.State.Running.StartedAt.Time
		case s.State.Terminated != nil:
			started = s.State.Terminated.StartedAt.Time
			if f := s.State.Terminated.FinishedAt.Time; f.After(end) {
				end = f
			}
		}
		if !started.IsZero() && (start.IsZero() || started.Before(start)) {
			start = started
		}
	}
	if job != nil && !start.IsZero() && !job.CreationTimestamp.IsZero() {
		w.rec.PodStartLatency(max(0, start.Sub(job.CreationTimestamp.Time)))
	}
	if !end.IsZero() {
		w.rec.ResultLatency(max(0, w.clock.Since(end)))
	}
}

// goroutine runs f in a goroutine that Close waits for, unless the
// Watcher is closed; it reports whether f was started.
func (w *Watcher) goroutine(f func()) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.wg.Go(f)
	return true
}

// stream returns the namespace's stream, starting it on first use.
// Streams live until Close: a worker uses few namespaces, a stream costs
// two watch requests and its cache of (trimmed) labelled objects, and a
// stream kept warm sees a Job that finished before its Wait began.
func (w *Watcher) stream(ns string) (*stream, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	if s, ok := w.streams[ns]; ok {
		return s, nil
	}
	s, err := newStream(w, ns)
	if err != nil {
		return nil, err
	}
	w.streams[ns] = s
	s.start(func(f func()) { w.wg.Go(f) })
	return s, nil
}

// JobRef names a Job. Any Job that matches Options.Selector can be
// followed, including one this process did not create (for example one
// found again by its infrastructure PID after a restart).
type JobRef struct {
	// Namespace and Name are the Job's; both are required.
	Namespace, Name string
}

// String returns "namespace/name".
func (r JobRef) String() string { return r.Namespace + "/" + r.Name }

func (r JobRef) validate() error {
	var problems []string
	for _, msg := range validation.IsDNS1123Label(r.Namespace) {
		problems = append(problems, "namespace: "+msg)
	}
	for _, msg := range validation.IsDNS1123Subdomain(r.Name) {
		problems = append(problems, "name: "+msg)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %q: %s", ErrInvalidRef, r.String(), strings.Join(problems, "; "))
	}
	return nil
}

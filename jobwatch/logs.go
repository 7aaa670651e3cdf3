package jobwatch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/retry"
)

// Log follower timing: reconnect backoff bounds. The final read of a
// finished pod's log retries under Options.Retry.
const (
	logRetryMin = 100 * time.Millisecond
	logRetryMax = 2 * time.Second
)

// logTarget is a pod whose run container's log is to be written.
type logTarget struct {
	pod       string
	uid       types.UID
	container string
	ready     bool // the container has started, so its log can be read
	done      bool // the pod has finished or is gone: read to the end, stop
}

// logFollower writes the run container's log of each pod of one run, in
// turn, to a Writer. Wait tells it about pods through update and ends it
// with finish. Kubernetes log follow streams may never end (kwok's do
// not), so a pod's stream is cut when Wait sees the pod finish, and one
// last plain read, deduplicated, picks up any line the stream missed.
type logFollower struct {
	open   func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
	ns     string
	out    io.Writer
	since  time.Time
	logger *slog.Logger
	clock  clock.Clock
	rec    metrics.Recorder // nil: none
	retry  retry.Policy     // of the final read
	done   chan struct{}    // closed when run returns

	mu      sync.Mutex
	targets map[types.UID]logTarget // guarded by mu
	order   []types.UID             // targets oldest first; guarded by mu
	over    bool                    // no more pods will come; guarded by mu
	current types.UID               // pod being followed; guarded by mu
	cut     context.CancelFunc      // ends the current follow stream; guarded by mu
	notify  chan struct{}           // capacity 1

	last time.Time // newest timestamp written; read after done

	// The tail of the log written, of the pod followed last: used by
	// run's goroutine only, read after done.
	tailLines int       // lines the tail keeps; 0: none
	tail      *tailRing // of tailPod
	tailPod   types.UID // the pod whose log tail holds
	tailDone  bool      // tailPod's log was read to its end
}

func newLogFollower(w *Watcher, ns string, out io.Writer, since time.Time, tailLines int) *logFollower {
	open := func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return w.client.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
	}
	return &logFollower{
		open: open, ns: ns, out: out, since: since, logger: w.logger, clock: w.clock, rec: w.rec, retry: w.opts.Retry,
		done: make(chan struct{}), targets: map[types.UID]logTarget{}, notify: make(chan struct{}, 1),
		tailLines: tailLines,
	}
}

// logContext returns the context for the log follower of a run whose
// Wait has runCtx: it ends with the Watcher (the follower reads the last
// lines after the run's end) and carries the run's request count, if
// runCtx has one, so that the run's log streams are charged to it (see
// metrics.WithRequestCount).
func (w *Watcher) logContext(runCtx context.Context) (context.Context, context.CancelFunc) {
	ctx := w.ctx
	if c := metrics.RequestCountFrom(runCtx); c != nil {
		ctx = metrics.WithRequestCount(ctx, c)
	}
	return context.WithCancel(ctx)
}

// update tells the follower the current pods (oldest first) and whether
// the run is over. It cuts the current stream if its pod is done.
func (f *logFollower) update(targets []logTarget, over bool) {
	f.mu.Lock()
	for _, t := range targets {
		if _, ok := f.targets[t.uid]; !ok {
			f.order = append(f.order, t.uid)
		}
		if old := f.targets[t.uid]; old.done {
			t.done = true // gone pods stay done
		}
		f.targets[t.uid] = t
	}
	f.over = f.over || over
	if f.cut != nil && (f.over || f.targets[f.current].done) {
		f.cut()
	}
	f.mu.Unlock()
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

// run follows pods until the run is over and every started pod's log has
// been read to its end, or ctx ends.
func (f *logFollower) run(ctx context.Context) {
	defer close(f.done)
	finished := map[types.UID]bool{}
	for {
		t, ok := f.next(ctx, finished)
		if !ok {
			return
		}
		f.logger.Debug("jobwatch: reading a pod's log", "namespace", f.ns, "pod", t.pod, "container", t.container)
		err := f.follow(ctx, t)
		f.logger.Debug("jobwatch: read a pod's log", "namespace", f.ns, "pod", t.pod, "err", err)
		if errors.Is(err, errWriter) {
			return
		}
		finished[t.uid] = true
	}
}

// next waits for the oldest pod not yet done with whose log can be read,
// skipping pods that ended without starting.
func (f *logFollower) next(ctx context.Context, finished map[types.UID]bool) (logTarget, bool) {
	for {
		f.mu.Lock()
		for _, uid := range f.order {
			t := f.targets[uid]
			if finished[uid] || (t.done && !t.ready) {
				continue
			}
			if t.ready {
				f.mu.Unlock()
				return t, true
			}
			if !f.over {
				break // wait for it to start, to keep the pods in order
			}
		}
		over := f.over
		f.mu.Unlock()
		if over {
			return logTarget{}, false // a pod not started by now never will be
		}
		select {
		case <-ctx.Done():
			return logTarget{}, false
		case <-f.notify:
		}
	}
}

// errWriter marks a failed write to WaitOptions.Logs; following stops.
var errWriter = errors.New("write log")

// follow writes pod t's log until t is done or the run is over, then
// reads what is left.
func (f *logFollower) follow(ctx context.Context, t logTarget) error {
	cur := &logCursor{since: f.since}
	f.tail, f.tailPod, f.tailDone = newTailRing(f.tailLines), t.uid, false
	defer func() {
		if cur.last.After(f.last) {
			f.last = cur.last
		}
	}()
	retry := logRetryMin
	for {
		sctx, cut := context.WithCancel(ctx)
		f.mu.Lock()
		t = f.targets[t.uid]
		end := t.done || f.over
		f.current, f.cut = t.uid, cut
		f.mu.Unlock()
		if end {
			cut()
			return f.finalRead(ctx, t, cur)
		}
		n, err := f.read(sctx, t, cur, true)
		wasCut := sctx.Err() != nil
		cut()
		f.mu.Lock()
		f.cut = nil
		f.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errWriter):
			return err
		case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
			// No retry can fix a missing right: give the log up, not the run.
			f.logger.Warn("jobwatch: may not read a pod's log; check the pods/log get permission", "namespace", f.ns, "pod", t.pod, "container", t.container, "err", err)
			return nil
		case wasCut, apierrors.IsNotFound(err):
			// The pod is done, or gone: read what is left, once.
			f.mu.Lock()
			f.targets[t.uid] = logTarget{pod: t.pod, uid: t.uid, container: t.container, ready: true, done: true}
			f.mu.Unlock()
			continue
		}
		f.logger.Debug("jobwatch: log stream ended; resuming", "namespace", f.ns, "pod", t.pod, "err", err)
		if n > 0 {
			retry = logRetryMin // the stream worked for a while
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-f.clock.After(retry):
		}
		retry = min(2*retry, logRetryMax)
		f.reconnected()
	}
}

// reconnected tells the Recorder, if any, of a log stream opened again.
func (f *logFollower) reconnected() {
	if f.rec != nil {
		f.rec.LogReconnect()
	}
}

// finalRead reads the log of a finished pod from the cursor to its end,
// retrying transient failures under the follower's retry policy; the
// cursor keeps a retry from writing a line twice.
func (f *logFollower) finalRead(ctx context.Context, t logTarget, cur *logCursor) error {
	var werr error // a failed write: final, whatever the writer's error
	attempts := 0
	_, err := retry.Value(ctx, f.retry, func(ctx context.Context) (int, error) {
		if attempts++; attempts > 1 {
			f.reconnected()
		}
		n, err := f.read(ctx, t, cur, false)
		f.logger.Debug("jobwatch: final log read", "namespace", f.ns, "pod", t.pod, "lines", n, "err", err)
		if errors.Is(err, errWriter) {
			werr = err
			return n, nil
		}
		return n, err
	})
	switch {
	case werr != nil:
		return werr
	case err == nil:
		f.tailDone = true
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	f.logger.Warn("jobwatch: could not read the end of a pod's log", "namespace", f.ns, "pod", t.pod, "container", t.container, "err", err)
	return nil
}

// write writes one line, with its timestamp if out is a TimedWriter.
func (f *logFollower) write(ts time.Time, text []byte) error {
	if tw, ok := f.out.(TimedWriter); ok {
		return tw.WriteLine(ts, text)
	}
	_, err := f.out.Write(text)
	return err
}

// read opens one log stream from the cursor and writes each new complete
// line. A plain read (follow false) ends at EOF, and then a last line
// without a newline counts too; on a follow stream it may be cut short
// and comes again on the next stream. It returns the lines written.
func (f *logFollower) read(ctx context.Context, t logTarget, cur *logCursor, follow bool) (int, error) {
	opts := &corev1.PodLogOptions{Container: t.container, Follow: follow, Timestamps: true}
	if since := cur.reopen(); !since.IsZero() {
		opts.SinceTime = &metav1.Time{Time: since}
	}
	stream, err := f.open(ctx, t.pod, opts)
	if err != nil {
		return 0, fmt.Errorf("open log of %s/%s: %w", f.ns, t.pod, err)
	}
	defer stream.Close()
	r := bufio.NewReaderSize(stream, 64<<10)
	n := 0
	for {
		line, err := r.ReadBytes('\n')
		complete := len(line) > 0 && line[len(line)-1] == '\n'
		if complete || (len(line) > 0 && !follow && err == io.EOF) {
			n++
			ts, text, ok := splitLogLine(line)
			if !ok || cur.admit(ts) {
				if werr := f.write(ts, text); werr != nil {
					f.logger.Warn("jobwatch: writing the log failed; no more log lines will be written", "namespace", f.ns, "pod", t.pod, "err", werr)
					return n, fmt.Errorf("%w: %w", errWriter, werr)
				}
				f.tail.add(tailLine(text, false))
			}
		}
		if err != nil {
			if err == io.EOF && !follow {
				return n, nil
			}
			return n, err
		}
	}
}

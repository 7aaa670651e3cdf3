package jobwatch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubeworker/kubeworker/retry"
)

// DefaultLogTailLines is how many of the last lines of the run
// container's log Result.LogTail keeps when WaitOptions.LogTailLines is
// zero.
const DefaultLogTailLines = 20

// LogTailLineBytes bounds each line of Result.LogTail: a longer line is
// cut to its first LogTailLineBytes bytes, less the bytes of a UTF-8
// character that would be cut in two. So a tail holds at most
// LogTailLines × LogTailLineBytes bytes of text.
const LogTailLineBytes = 4 << 10

// The Result's log tail comes from one of two places. With a Logs writer,
// the follow stream that feeds it also fills the tail, at no extra
// request. Without one, Wait reads the tail once, when the run has ended
// and before it returns: one plain request with tailLines, which the API
// server answers at once with at most that many lines. Following a log
// instead would hold a stream open through the API server to the kubelet
// for the pod's whole life, send every byte the run writes, and need a
// last plain read anyway; the one read costs a single short request per
// run. Its risk, a pod deleted before the read, is small: Wait reads as
// soon as it sees the end.

// logTailLines returns how many lines the tail keeps; 0: none.
func (o WaitOptions) logTailLines() int {
	switch {
	case o.LogTailLines < 0:
		return 0
	case o.LogTailLines == 0:
		return DefaultLogTailLines
	}
	return o.LogTailLines
}

// tailRing keeps the last lines added to it, each cut to
// LogTailLineBytes. A nil tailRing keeps nothing.
type tailRing struct {
	lines []string // up to n lines; once full, lines[next] is the oldest
	next  int
	n     int
}

// newTailRing returns a ring of n lines, or nil if n is not positive.
func newTailRing(n int) *tailRing {
	if n <= 0 {
		return nil
	}
	return &tailRing{n: n}
}

// add keeps a line made by tailLine, dropping the oldest line once the
// ring is full.
func (r *tailRing) add(s string) {
	if r == nil {
		return
	}
	if len(r.lines) < r.n {
		r.lines = append(r.lines, s)
		return
	}
	r.lines[r.next] = s
	r.next = (r.next + 1) % r.n
}

// slice returns the lines kept, oldest first; nil if none.
func (r *tailRing) slice() []string {
	if r == nil || len(r.lines) == 0 {
		return nil
	}
	out := make([]string, 0, len(r.lines))
	out = append(out, r.lines[r.next:]...)
	return append(out, r.lines[:r.next]...)
}

// tailLine returns a log line as the tail keeps it: without its line end,
// cut to LogTailLineBytes. cut says the line was cut already (its start
// only was read); a character cut in two at the end is then dropped.
func tailLine(line []byte, cut bool) string {
	if len(line) > LogTailLineBytes {
		line, cut = line[:LogTailLineBytes], true
	}
	if !cut {
		line = bytes.TrimSuffix(line, []byte{'\n'})
		line = bytes.TrimSuffix(line, []byte{'\r'})
		return string(line)
	}
	for i := len(line) - 1; i >= 0 && i >= len(line)-utf8.UTFMax; i-- {
		if utf8.RuneStart(line[i]) {
			if !utf8.FullRune(line[i:]) {
				line = line[:i]
			}
			break
		}
	}
	return string(line)
}

// readTail reads a log to its end and returns its last n lines. It holds
// no more than LogTailLineBytes of a line, however long the line is.
func readTail(r io.Reader, n int) ([]string, error) {
	ring := newTailRing(n)
	br := bufio.NewReaderSize(r, LogTailLineBytes)
	skipping := false // the rest of a line already cut
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case skipping:
			skipping = errors.Is(err, bufio.ErrBufferFull)
		case errors.Is(err, bufio.ErrBufferFull):
			ring.add(tailLine(chunk, true))
			skipping = true
		case len(chunk) > 0:
			ring.add(tailLine(chunk, false))
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF:
			return ring.slice(), nil
		default:
			return nil, err
		}
	}
}

// readLogTail reads the last n lines of the container's log in pod: one
// plain request (tailLines n, no follow), each attempt bounded by
// getTimeout, a transient failure retried under Options.Retry.
func (w *Watcher) readLogTail(ctx context.Context, ns, pod, container string, n int) ([]string, error) {
	lines := int64(n)
	opts := &corev1.PodLogOptions{Container: container, TailLines: &lines}
	return retry.Value(ctx, w.opts.Retry, func(ctx context.Context) ([]string, error) {
		rctx, cancel := context.WithTimeout(ctx, getTimeout)
		defer cancel()
		stream, err := w.client.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(rctx)
		if err != nil {
			return nil, fmt.Errorf("open log of %s/%s: %w", ns, pod, err)
		}
		defer stream.Close()
		return readTail(stream, n)
	})
}

// logTail returns the tail of the log of res.Pod's run container: the
// follower's, if it read that log to its end (and from its start, or at
// least as many lines as the tail keeps); else one read of the tail, if
// the container has started and the pod is not gone. A failure leaves the
// tail empty and never changes the Result.
func (r *run) logTail(ctx context.Context, res Result) []string {
	n := r.opts.logTailLines()
	pod := r.newest()
	if n == 0 || pod == nil || pod.Name != res.Pod || res.Container == "" {
		return nil
	}
	if f := r.logs; f != nil && f.tailPod == pod.UID && f.tailDone {
		if tail := f.tail.slice(); r.opts.LogsSince.IsZero() || len(tail) >= n {
			return tail
		}
	}
	if res.Outcome == Succeeded || r.gone[pod.UID] || !logReadable(pod, res.Container) {
		return nil // a success needs no reason: no request for it
	}
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.w.ctx, cancel)
	defer stop()
	tail, err := r.w.readLogTail(tctx, r.ref.Namespace, pod.Name, res.Container, n)
	switch {
	case err == nil:
		return tail
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		r.w.logger.Warn("jobwatch: may not read a pod's log for the Result's tail; check the pods/log get permission", "namespace", r.ref.Namespace, "pod", pod.Name, "container", res.Container, "err", err)
	case apierrors.IsNotFound(err), tctx.Err() != nil:
		r.w.logger.Debug("jobwatch: no log tail: the pod is gone, or the wait ended", "namespace", r.ref.Namespace, "pod", pod.Name, "err", err)
	default:
		r.w.logger.Warn("jobwatch: could not read the tail of a pod's log", "namespace", r.ref.Namespace, "pod", pod.Name, "container", res.Container, "err", err)
	}
	return nil
}

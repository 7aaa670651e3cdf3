package jobwatch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// fakeLog serves one container's log as the API does with
// timestamps=true: sinceTime in whole seconds, follow streams that never
// end by themselves, and, for the first cuts follow streams, a drop after
// a random number of bytes, often mid-line.
type fakeLog struct {
	mu      sync.Mutex
	lines   []string // "<ts> <text>\n"
	stamps  []time.Time
	changed chan struct{} // closed and replaced on append
	cuts    int           // follow streams still to cut
	opens   int
	rng     *rand.Rand
}

func newFakeLog(cuts int) *fakeLog {
	return &fakeLog{changed: make(chan struct{}), cuts: cuts, rng: rand.New(rand.NewPCG(1, 2))}
}

func (l *fakeLog) append(ts time.Time, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, ts.Format(time.RFC3339Nano)+" "+text+"\n")
	l.stamps = append(l.stamps, ts)
	close(l.changed)
	l.changed = make(chan struct{})
}

// from returns the lines at or after since, truncated to the second, as
// the API server does.
func (l *fakeLog) from(since time.Time, i int) (string, int, chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	since = since.Truncate(time.Second)
	var b strings.Builder
	for ; i < len(l.lines); i++ {
		if !l.stamps[i].Before(since) {
			b.WriteString(l.lines[i])
		}
	}
	return b.String(), i, l.changed
}

func (l *fakeLog) open(ctx context.Context, _ string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	var since time.Time
	if opts.SinceTime != nil {
		since = opts.SinceTime.Time
	}
	l.mu.Lock()
	l.opens++
	cutAfter := -1
	if opts.Follow && l.cuts > 0 {
		l.cuts--
		cutAfter = 1 + l.rng.IntN(3000)
	}
	l.mu.Unlock()
	if !opts.Follow {
		text, _, _ := l.from(since, 0)
		return io.NopCloser(strings.NewReader(text)), nil
	}
	pr, pw := io.Pipe()
	go func() {
		i, sent := 0, 0
		for {
			text, next, changed := l.from(since, i)
			i = next
			if cutAfter >= 0 && sent+len(text) > cutAfter {
				pw.Write([]byte(text[:cutAfter-sent]))
				pw.CloseWithError(errors.New("connection reset by peer"))
				return
			}
			if _, err := pw.Write([]byte(text)); err != nil {
				return
			}
			sent += len(text)
			select {
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
				return
			case <-changed:
			}
		}
	}()
	return pr, nil
}

func testFollower(src *fakeLog, out io.Writer, since time.Time) *logFollower {
	return &logFollower{
		open: src.open, ns: "ns", out: out, since: since, logger: slog.New(slog.DiscardHandler), clock: clock.RealClock{},
		done: make(chan struct{}), targets: map[types.UID]logTarget{}, notify: make(chan struct{}, 1),
	}
}

// stamp gives line i a timestamp shared with its neighbours: three lines
// per timestamp, about 140 per second.
func stamp(i int) time.Time {
	return t0.Add(time.Duration(i/3) * 7 * time.Millisecond)
}

func TestLogFollowerNeitherLosesNorRepeatsLinesAcrossDroppedStreams(t *testing.T) {
	const total, cuts = 6000, 25
	src := newFakeLog(cuts)
	for i := range total / 2 {
		src.append(stamp(i), fmt.Sprint(i))
	}
	var out safeBuffer
	f := testFollower(src, &out, time.Time{})
	target := logTarget{pod: "p", uid: "u", container: "main", ready: true}
	go f.run(t.Context())
	f.update([]logTarget{target}, false)
	for i := total / 2; i < total; i++ {
		src.append(stamp(i), fmt.Sprint(i))
		if i%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	// The pod ends once every cut has happened; the follower then cuts
	// its endless stream and reads the rest.
	for {
		src.mu.Lock()
		left := src.cuts
		src.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	target.done = true
	f.update([]logTarget{target}, true)
	<-f.done
	if src.opens < cuts+1 {
		t.Errorf("%d log requests, want at least %d (every cut, then the final read)", src.opens, cuts+1)
	}
	checkNumbered(t, out.String(), 0, total)
	if !f.last.Equal(stamp(total - 1)) {
		t.Errorf("last timestamp %v, want %v", f.last, stamp(total-1))
	}
}

func TestLogFollowerSkipsLinesUpToLogsSince(t *testing.T) {
	src := newFakeLog(0)
	for i := range 300 {
		src.append(stamp(i), fmt.Sprint(i))
	}
	var out safeBuffer
	// Lines 0..149 are at or before stamp(149), whose timestamp lines
	// 147..149 share.
	f := testFollower(src, &out, stamp(149))
	go f.run(t.Context())
	f.update([]logTarget{{pod: "p", uid: "u", container: "main", ready: true, done: true}}, true)
	<-f.done
	checkNumbered(t, out.String(), 150, 300)
}

func TestLogFollowerStopsWhenTheWriterFails(t *testing.T) {
	src := newFakeLog(0)
	for i := range 10 {
		src.append(stamp(i), fmt.Sprint(i))
	}
	f := testFollower(src, failingWriter{}, time.Time{})
	go f.run(t.Context())
	f.update([]logTarget{{pod: "p", uid: "u", container: "main", ready: true}}, false)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower kept going after its writer failed")
	}
}

func TestLogFollowerReadsEachPodInTurnAndSkipsPodsThatNeverStarted(t *testing.T) {
	logs := map[string]*fakeLog{"a": newFakeLog(0), "b": newFakeLog(0), "c": newFakeLog(0)}
	for i := range 5 {
		logs["a"].append(stamp(i), "a"+fmt.Sprint(i))
		logs["c"].append(stamp(i), "c"+fmt.Sprint(i))
	}
	var out safeBuffer
	f := testFollower(nil, &out, time.Time{})
	f.open = func(ctx context.Context, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
		return logs[pod].open(ctx, pod, opts)
	}
	go f.run(t.Context())
	f.update([]logTarget{
		{pod: "a", uid: "a", ready: true, done: true},
		{pod: "b", uid: "b", done: true}, // deleted while Pending
		{pod: "c", uid: "c", ready: true, done: true},
	}, true)
	<-f.done
	want := "a0\na1\na2\na3\na4\nc0\nc1\nc2\nc3\nc4\n"
	if got := out.String(); got != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestLogCursorAdmitsEachTimestampedLineOnce(t *testing.T) {
	c := &logCursor{}
	ts := []time.Time{t0, t0, t0.Add(1), t0.Add(2), t0.Add(2)}
	for i, s := range ts {
		if !c.admit(s) {
			t.Fatalf("line %d refused on the first stream", i)
		}
	}
	if since := c.reopen(); !since.Equal(t0.Add(2)) {
		t.Fatalf("reopen asks from %v", since)
	}
	// The second stream repeats the second's lines, then has one more at
	// the same timestamp.
	for i, s := range append(ts, t0.Add(2)) {
		want := i == len(ts)
		if got := c.admit(s); got != want {
			t.Errorf("replayed line %d admitted %v, want %v", i, got, want)
		}
	}
}

func checkNumbered(t *testing.T, got string, from, to int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != to-from {
		t.Errorf("got %d lines, want %d", len(lines), to-from)
	}
	for i, line := range lines {
		if want := fmt.Sprint(from + i); line != want {
			t.Fatalf("line %d is %q, want %q", i, line, want)
		}
	}
}

// safeBuffer is a bytes.Buffer safe for a writer and a reader at once.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *safeBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *safeBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// timedLines records what a TimedWriter is given.
type timedLines struct {
	mu    sync.Mutex
	lines []string
	times []time.Time
}

func (w *timedLines) Write(p []byte) (int, error) { panic("Write called on a TimedWriter") }

func (w *timedLines) WriteLine(ts time.Time, line []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines, w.times = append(w.lines, string(line)), append(w.times, ts)
	return nil
}

func TestLogFollowerGivesATimedWriterEachLinesTimestamp(t *testing.T) {
	src := newFakeLog(3)
	for i := range 100 {
		src.append(stamp(i), fmt.Sprint(i))
	}
	var out timedLines
	f := testFollower(src, &out, time.Time{})
	go f.run(t.Context())
	f.update([]logTarget{{pod: "p", uid: "u", container: "main", ready: true, done: true}}, true)
	<-f.done
	out.mu.Lock()
	defer out.mu.Unlock()
	if len(out.lines) != 100 {
		t.Fatalf("%d lines, want 100", len(out.lines))
	}
	for i, line := range out.lines {
		if line != fmt.Sprintf("%d\n", i) || !out.times[i].Equal(stamp(i)) {
			t.Errorf("line %d: %q at %v, want %q at %v", i, line, out.times[i], fmt.Sprintf("%d\n", i), stamp(i))
		}
	}
}

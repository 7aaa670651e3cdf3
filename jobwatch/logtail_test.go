package jobwatch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func numbered(from, to int) []string {
	var lines []string
	for i := from; i < to; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	return lines
}

func TestReadTailKeepsTheLastLinesInOrder(t *testing.T) {
	long := strings.Repeat("x", LogTailLineBytes-1) + "é" // é's 2 bytes straddle the bound
	exact := strings.Repeat("y", LogTailLineBytes)
	for _, c := range []struct {
		name string
		log  string
		n    int
		want []string
	}{
		{"an empty log has no tail", "", 20, nil},
		{"a short log is all tail", "a\nb\n", 20, []string{"a", "b"}},
		{"a long log keeps its last n lines", strings.Join(numbered(0, 100), "\n") + "\n", 20, numbered(80, 100)},
		{"a last line without a newline counts", "a\nb\nc", 2, []string{"b", "c"}},
		{"CRLF line ends are dropped", "a\r\nb\r\n", 5, []string{"a", "b"}},
		{"empty lines are lines", "a\n\n\n", 5, []string{"a", "", ""}},
		{"a long line is cut, and not in the middle of a character", "a\n" + long + "\nz\n", 5, []string{"a", strings.Repeat("x", LogTailLineBytes-1), "z"}},
		{"a line of exactly the bound is whole", exact + "\n" + exact, 5, []string{exact, exact}},
		{"a very long line costs one line", "a\n" + strings.Repeat("w", 10*LogTailLineBytes+7) + "\nb\n", 2, []string{strings.Repeat("w", LogTailLineBytes), "b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := readTail(strings.NewReader(c.log), c.n)
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("readTail = %d lines %.80q, %v; want %d lines %.80q", len(got), got, err, len(c.want), c.want)
			}
			for _, l := range got {
				if len(l) > LogTailLineBytes || !utf8.ValidString(l) {
					t.Errorf("line of %d bytes, valid UTF-8 %v", len(l), utf8.ValidString(l))
				}
			}
		})
	}
}

func TestReadTailReturnsAStreamError(t *testing.T) {
	broken := errors.New("connection reset by peer")
	if _, err := readTail(&failingReader{data: "a\nb\n", err: broken}, 5); !errors.Is(err, broken) {
		t.Errorf("readTail = %v, want %v", err, broken)
	}
}

type failingReader struct {
	data string
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestLogTailLinesDefaultsAndOff(t *testing.T) {
	for in, want := range map[int]int{0: DefaultLogTailLines, 5: 5, -1: 0} {
		if got := (WaitOptions{LogTailLines: in}).logTailLines(); got != want {
			t.Errorf("LogTailLines %d: %d lines, want %d", in, got, want)
		}
	}
}

// podLogServer answers the fake clientset's log requests as the API
// server would with one container log of lines (timestamped one second
// apart from t0): tailLines, sinceTime, timestamps. It records each
// request's options.
type podLogServer struct {
	lines []string
	err   error // returned for every request, if set

	mu   sync.Mutex
	reqs []corev1.PodLogOptions
}

func serveLogs(client *fake.Clientset, s *podLogServer) {
	client.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		opts := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		s.mu.Lock()
		s.reqs = append(s.reqs, *opts)
		s.mu.Unlock()
		if s.err != nil {
			return true, nil, s.err
		}
		var b strings.Builder
		first := 0
		if opts.TailLines != nil {
			first = max(0, len(s.lines)-int(*opts.TailLines))
		}
		for i := first; i < len(s.lines); i++ {
			ts := t0.Add(time.Duration(i) * time.Second)
			if opts.SinceTime != nil && ts.Before(opts.SinceTime.Time) {
				continue
			}
			if opts.Timestamps {
				b.WriteString(ts.Format(time.RFC3339Nano) + " ")
			}
			b.WriteString(s.lines[i] + "\n")
		}
		return true, &runtime.Unknown{Raw: []byte(b.String())}, nil
	})
}

func (s *podLogServer) requests() []corev1.PodLogOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// failedRun is a Job whose one pod ran and failed with exit code 3.
func failedRun(t *testing.T, logs *podLogServer) (*Watcher, *fake.Clientset) {
	t.Helper()
	w, client, _ := newFakeWatcher(t, testJob(), testPod("p1", 1, running, exited("main", 3, "Error")))
	serveLogs(client, logs)
	return w, client
}

func TestWaitWithoutLogsReadsTheTailOnceWithoutFollowing(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 50)}
	w, _ := failedRun(t, logs)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{})
	if err != nil || res.Outcome != Failed || res.ExitCode != 3 {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
	if !slices.Equal(res.LogTail, numbered(30, 50)) {
		t.Errorf("LogTail %q, want lines 30 to 49", res.LogTail)
	}
	reqs := logs.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d log requests, want 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Follow || r.TailLines == nil || *r.TailLines != DefaultLogTailLines || r.Container != "main" || r.SinceTime != nil {
		t.Errorf("log request %+v, want a plain read of the last %d lines of main", r, DefaultLogTailLines)
	}
}

func TestWaitKeepsAsManyTailLinesAsAsked(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 50)}
	w, _ := failedRun(t, logs)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{LogTailLines: 3})
	if err != nil || !slices.Equal(res.LogTail, numbered(47, 50)) {
		t.Errorf("Wait = LogTail %q, %v; want lines 47 to 49", res.LogTail, err)
	}
	if reqs := logs.requests(); len(reqs) != 1 || *reqs[0].TailLines != 3 {
		t.Errorf("log requests %+v, want one for 3 lines", reqs)
	}
}

func TestWaitReadsNoLogWhenTheTailIsOff(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 50)}
	w, _ := failedRun(t, logs)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{LogTailLines: -1})
	if err != nil || res.Outcome != Failed || res.LogTail != nil {
		t.Errorf("Wait = %+v, %v; want Failed with no tail", res, err)
	}
	if reqs := logs.requests(); len(reqs) != 0 {
		t.Errorf("log requests %+v, want none", reqs)
	}
}

func TestWaitReadsNoTailOfAContainerThatNeverStarted(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 5)}
	// An image name that can never be pulled ends the Wait at once.
	w, client, _ := newFakeWatcher(t, testJob(), testPod("p1", 1, waiting("main", "InvalidImageName")))
	serveLogs(client, logs)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{})
	if err != nil || res.Outcome != ImagePullError || res.Pod != "p1" || res.LogTail != nil {
		t.Errorf("Wait = %+v, %v; want ImagePullError with no tail", res, err)
	}
	if reqs := logs.requests(); len(reqs) != 0 {
		t.Errorf("log requests %+v, want none", reqs)
	}
}

func TestWaitTakesTheTailFromTheStreamThatFeedsLogs(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 50)}
	w, _ := failedRun(t, logs)
	var out safeBuffer
	res, err := w.Wait(t.Context(), ref1, WaitOptions{Logs: &out, LogTailLines: 5})
	if err != nil || res.Outcome != Failed {
		t.Fatalf("Wait = %+v, %v", res, err)
	}
	if want := strings.Join(numbered(0, 50), "\n") + "\n"; out.String() != want {
		t.Errorf("Logs got %q, want the whole log", out.String())
	}
	if !slices.Equal(res.LogTail, numbered(45, 50)) {
		t.Errorf("LogTail %q, want lines 45 to 49", res.LogTail)
	}
	// The pod had ended: one plain read wrote the log and filled the tail.
	if reqs := logs.requests(); len(reqs) != 1 || reqs[0].TailLines != nil {
		t.Errorf("log requests %+v, want the one read that fed Logs", reqs)
	}
}

func TestWaitReadsTheTailItselfWhenTheLogsWriterFails(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 50)}
	w, _ := failedRun(t, logs)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{Logs: failingWriter{}, LogTailLines: 5})
	if err != nil || res.Outcome != Failed || !slices.Equal(res.LogTail, numbered(45, 50)) {
		t.Errorf("Wait = %+v, %v; want Failed with lines 45 to 49", res, err)
	}
	if reqs := logs.requests(); len(reqs) != 2 || reqs[1].TailLines == nil || *reqs[1].TailLines != 5 {
		t.Errorf("log requests %+v, want the writer's read and then one of the tail", reqs)
	}
}

func TestWaitReadsTheTailItselfWhenLogsSinceLeftTooFewLines(t *testing.T) {
	logs := &podLogServer{lines: numbered(0, 50)}
	w, _ := failedRun(t, logs)
	var out safeBuffer
	since := t0.Add(47 * time.Second) // lines 48 and 49 come after it
	res, err := w.Wait(t.Context(), ref1, WaitOptions{Logs: &out, LogsSince: since, LogTailLines: 5})
	if err != nil || out.String() != "line 48\nline 49\n" {
		t.Fatalf("Wait = %+v, %v; Logs got %q", res, err, out.String())
	}
	if !slices.Equal(res.LogTail, numbered(45, 50)) {
		t.Errorf("LogTail %q, want lines 45 to 49", res.LogTail)
	}
}

func TestAForbiddenLogLeavesTheTailEmptyAndTheResultAlone(t *testing.T) {
	logs := &podLogServer{err: apierrors.NewForbidden(schema.GroupResource{Resource: "pods/log"}, "p1", errors.New("no"))}
	w, _ := failedRun(t, logs)
	res, err := w.Wait(t.Context(), ref1, WaitOptions{})
	if err != nil || res.Outcome != Failed || res.ExitCode != 3 || res.LogTail != nil {
		t.Errorf("Wait = %+v, %v; want Failed, exit code 3, no tail", res, err)
	}
	if reqs := logs.requests(); len(reqs) != 1 {
		t.Errorf("%d log requests, want 1: Forbidden is not retried", len(reqs))
	}
}

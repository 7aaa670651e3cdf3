package jobwatch

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// logRequests records the query of every pod log request made through a
// config it wraps.
type logRequests struct {
	mu      sync.Mutex
	queries []url.Values
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// watchLogRequests returns a copy of the cluster's config whose pod log
// requests l records.
func watchLogRequests() (*rest.Config, *logRequests) {
	l := &logRequests{}
	conf := cluster.Config()
	conf.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/log") {
				l.mu.Lock()
				l.queries = append(l.queries, r.URL.Query())
				l.mu.Unlock()
			}
			return rt.RoundTrip(r)
		})
	})
	return conf, l
}

func (l *logRequests) all() []url.Values {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.queries)
}

func TestE2EAFailedRunWithoutLogsHasTheTailOfItsLog(t *testing.T) {
	t.Parallel()
	conf, reqs := watchLogRequests()
	client, ns := clientFor(t, conf), cluster.NewNamespace(t)
	lines := numbered(1, 31)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: strings.Join(lines, "\n"), tc.AnnotationExitCode: "3"}))
	res := waitJob(t, newWatcher(t, conf), job, WaitOptions{})
	expect(t, res, Failed, 3)
	if !slices.Equal(res.LogTail, lines[len(lines)-DefaultLogTailLines:]) {
		t.Errorf("LogTail %q, want the last %d of %q", res.LogTail, DefaultLogTailLines, lines)
	}
	// One plain read of the last lines: no stream followed.
	if q := reqs.all(); len(q) != 1 || q[0].Get("tailLines") != "20" || q[0].Get("follow") == "true" || q[0].Get("container") != "main" {
		t.Errorf("log requests %v, want one of tailLines=20 for main, not following", q)
	}
}

func TestE2EAnOOMKilledRunKeepsABoundedTail(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	long := strings.Repeat("x", 3*LogTailLineBytes)
	log := strings.Join([]string{"starting", "loading 1", "loading 2", "allocating", long}, "\n")
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: log, tc.AnnotationExitCode: "137", tc.AnnotationReason: "OOMKilled"}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{LogTailLines: 3})
	expect(t, res, OOMKilled, 137)
	if want := []string{"loading 2", "allocating", long[:LogTailLineBytes]}; !slices.Equal(res.LogTail, want) {
		t.Errorf("LogTail has %d lines of %d bytes, want 3: loading 2, allocating and %d bytes of x (%.60q)",
			len(res.LogTail), lineBytes(res.LogTail), LogTailLineBytes, res.LogTail)
	}
}

func lineBytes(lines []string) []int {
	n := make([]int, len(lines))
	for i, l := range lines {
		n[i] = len(l)
	}
	return n
}

func TestE2ENoLogIsReadWhenTheTailIsOff(t *testing.T) {
	t.Parallel()
	conf, reqs := watchLogRequests()
	client, ns := clientFor(t, conf), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: "a\nb", tc.AnnotationExitCode: "3"}))
	res := waitJob(t, newWatcher(t, conf), job, WaitOptions{LogTailLines: -1})
	expect(t, res, Failed, 3)
	if res.LogTail != nil {
		t.Errorf("LogTail %q, want none", res.LogTail)
	}
	if q := reqs.all(); len(q) != 0 {
		t.Errorf("log requests %v, want none", q)
	}
}

func TestE2EWithLogsTheTailComesFromTheStreamThatWritesThem(t *testing.T) {
	t.Parallel()
	conf, reqs := watchLogRequests()
	client, ns := clientFor(t, conf), cluster.NewNamespace(t)
	lines := numbered(1, 31)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: strings.Join(lines, "\n"), tc.AnnotationExitCode: "3"}))
	var out safeBuffer
	res := waitJob(t, newWatcher(t, conf), job, WaitOptions{Logs: &out})
	expect(t, res, Failed, 3)
	if want := strings.Join(lines, "\n") + "\n"; out.String() != want {
		t.Errorf("Logs got %q, want %q", out.String(), want)
	}
	if !slices.Equal(res.LogTail, lines[len(lines)-DefaultLogTailLines:]) {
		t.Errorf("LogTail %q, want the last %d of %q", res.LogTail, DefaultLogTailLines, lines)
	}
	for _, q := range reqs.all() {
		if q.Has("tailLines") {
			t.Errorf("a log request for the tail (%v) beside the stream that writes Logs", q)
		}
	}
}

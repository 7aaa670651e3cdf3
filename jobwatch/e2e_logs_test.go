package jobwatch

import (
	"fmt"
	"testing"
	"time"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

func TestE2ELogsAreFollowedToTheEndOfThePod(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: "hello\nworld", tc.AnnotationDelay: "1h"}))
	var out safeBuffer
	w := newWatcher(t, cluster.Config())
	ch := asyncWait(w, job, WaitOptions{Logs: &out, Container: "main"})
	pod := podOf(t, client, job, "Running", isRunning)
	waitUntil(t, "the first lines", func() bool { return out.String() == "hello\nworld\n" })
	if err := cluster.AppendPodLog(ns, pod.Name, "main", "a", "b"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the followed lines", func() bool { return out.String() == "hello\nworld\na\nb\n" })
	// Lines written just before the end are read after the follow
	// stream, which never ends by itself, is cut.
	if err := cluster.AppendPodLog(ns, pod.Name, "main", "c"); err != nil {
		t.Fatal(err)
	}
	setDelay(t, client, pod, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)
	if got := out.String(); got != "hello\nworld\na\nb\nc\n" {
		t.Errorf("log %q", got)
	}
	if c.res.LastLogTime.IsZero() {
		t.Errorf("LastLogTime is zero")
	}
	// Continuing from LastLogTime writes nothing more.
	var rest safeBuffer
	waitJob(t, w, job, WaitOptions{Logs: &rest, LogsSince: c.res.LastLogTime})
	if rest.String() != "" {
		t.Errorf("continued log %q, want nothing", rest.String())
	}
}

func TestE2ELogsOf10000LinesSurvive20CutsWithoutLossOrRepeat(t *testing.T) {
	// Not parallel: the proxy's cuts hit every client that uses it.
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}))
	var out safeBuffer
	w := newWatcher(t, cluster.ProxyConfig())
	ch := asyncWait(w, job, WaitOptions{Logs: &out})
	pod := podOf(t, client, job, "Running", isRunning)
	const lines, batch, cuts = 10000, 100, 20
	before := cluster.Proxy().Stats().CutConnections
	n := 0
	for i := 1; i <= lines; i += batch {
		var b []string
		for j := i; j < i+batch; j++ {
			b = append(b, fmt.Sprint(j))
		}
		if err := cluster.AppendPodLog(ns, pod.Name, "main", b...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		if (i/batch)%(lines/batch/cuts) == lines/batch/cuts/2 {
			// Let the stream carry some lines, then cut it mid-flow; if
			// the client is between connections, wait for the next one.
			waitUntil(t, "a connection to cut", func() bool { return cluster.Proxy().CutAll() > 0 })
			n++
		}
	}
	setDelay(t, client, pod, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)
	if n != cuts || cluster.Proxy().Stats().CutConnections-before < cuts {
		t.Errorf("%d cuts, %d connections cut", n, cluster.Proxy().Stats().CutConnections-before)
	}
	checkNumbered(t, out.String(), 1, lines+1)
}

package jobwatch

import (
	"testing"

	"go.uber.org/goleak"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// HTTP connections are pooled by client-go's transport cache and outlive
// any one client; their goroutines are not the Watcher's.
var httpConnections = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*http2ClientConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
}

func TestE2ENoGoroutineOutlivesARunOrClose(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	beforeNew := goleak.IgnoreCurrent()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	w := New(clientFor(t, cluster.Config()), Options{})
	// The first Wait starts the namespace's streams, which stay.
	waitJob(t, w, createJob(t, client, ns, runJob(nil)), WaitOptions{})
	beforeRun := goleak.IgnoreCurrent()
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: "a\nb", tc.AnnotationDelay: "1s"}))
	var out safeBuffer
	var rec recorder
	res := waitJob(t, w, job, WaitOptions{Logs: &out, Events: &rec})
	expect(t, res, Succeeded, 0)
	if out.String() != "a\nb\n" || len(rec.all()) == 0 {
		t.Errorf("log %q, %d events", out.String(), len(rec.all()))
	}
	if err := goleak.Find(append(httpConnections, beforeRun)...); err != nil {
		t.Errorf("goroutines outlive the run: %v", err)
	}
	w.Close()
	if err := goleak.Find(append(httpConnections, beforeNew)...); err != nil {
		t.Errorf("goroutines outlive Close: %v", err)
	}
}

package jobwatch

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// Edges of a Job that changes while the Watcher's streams are down. In
// each test the Watcher is cut off (every request it makes fails, and the
// proxy drops its open watches), the admin client changes the Job, and
// the Watcher is let back in. What Wait returns for the Job it was
// following is what a user sees.
//
// Like the fault tests, these are not parallel: each drops every
// connection through the proxy, and the 410 variants compact etcd, which
// would turn another test's plain outage into a 410.

// edgeGuard bounds how long Wait may take once the Watcher is let back
// in. The reflectors back off at most 30 s between attempts, so a Wait
// that has not returned after this long hangs: it is a failure guard, not
// a timing assertion.
const edgeGuard = 90 * time.Second

// cutMode is how the Watcher is cut off.
type cutMode int

const (
	// connRefused: the Watcher's requests fail with "connection refused",
	// as when the API server or its load balancer is down. client-go's
	// reflectors take that as retriable (reflector.go,
	// isWatchErrorRetriable) and retry the watch from the resourceVersion
	// they had: the watch resumes, or, if that version was compacted, gets
	// 410 Gone and relists.
	connRefused cutMode = iota
	// proxyRefused: the proxy answers the Watcher's requests (matched by
	// its User-Agent) 503 (Proxy.Refuse). A reflector whose watch is
	// answered 503 ends its ListAndWatch and lists again: the Watcher
	// relists after the outage, without a 410, compacted or not.
	proxyRefused
)

// edgeVariant is one way of being cut off.
type edgeVariant struct {
	name    string
	mode    cutMode
	compact bool // compact etcd while the Watcher is cut off
	// What the streams must have done for the variant to be what it says
	// (checked from the Watcher's metrics): resumed without a relist, or
	// relisted after a 410.
	wantResume, wantExpired bool
}

var edgeVariants = []edgeVariant{
	// The watch resumes from its resourceVersion and replays every event
	// it missed.
	{name: "resume", mode: connRefused, wantResume: true},
	// The watch resumes from a compacted version, gets 410 Gone and
	// relists: objects gone meanwhile arrive as DeletedFinalStateUnknown,
	// with the last state the stream knew.
	{name: "410", mode: connRefused, compact: true, wantExpired: true},
	// The proxy refuses the Watcher (503) while etcd is compacted: the
	// reflectors relist as soon as their watch is refused, so they never
	// meet the 410; the relist loses the same history.
	{name: "proxy503", mode: proxyRefused, compact: true},
}

// edgeWatcher is a Watcher that reaches the cluster through the proxy
// and a transport the test can switch off.
type edgeWatcher struct {
	w     *Watcher
	ua    string
	log   safeBuffer
	tally tally

	down atomic.Bool // connRefused: fail every request
	cut  atomic.Bool // note the requests made while cut off
	undo func()      // proxyRefused: stop refusing

	mu    sync.Mutex
	tried map[string]bool // resources requested while cut off
}

func newEdgeWatcher(t *testing.T, ns string) *edgeWatcher {
	t.Helper()
	e := &edgeWatcher{ua: "jobwatch-edge/" + ns, tried: map[string]bool{}}
	conf := cluster.ProxyConfig()
	conf.UserAgent = e.ua
	conf.Wrap(func(rt http.RoundTripper) http.RoundTripper { return edgeTransport{e: e, rt: rt} })
	e.w = New(clientFor(t, conf), Options{
		Logger:  slog.New(slog.NewTextHandler(&e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: &e.tally,
	})
	t.Cleanup(func() {
		e.w.Close()
		if t.Failed() {
			t.Logf("the Watcher's log, last lines:\n%s", lastLines(e.log.String(), 60))
		}
	})
	return e
}

type edgeTransport struct {
	e  *edgeWatcher
	rt http.RoundTripper
}

func (t edgeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.e.cut.Load() {
		t.e.note(req)
	}
	if t.e.down.Load() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	return t.rt.RoundTrip(req)
}

func (e *edgeWatcher) note(req *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, res := range []string{"jobs", "pods"} {
		if strings.HasSuffix(req.URL.Path, "/"+res) {
			e.tried[res] = true
		}
	}
}

// cutOff cuts the Watcher off as mode says, drops its open connections,
// and returns once both its streams have tried to come back and been
// refused. The refusal is undone when the test ends, failed or not.
func (e *edgeWatcher) cutOff(t *testing.T, mode cutMode) {
	t.Helper()
	e.cut.Store(true)
	switch mode {
	case connRefused:
		e.down.Store(true)
		t.Cleanup(func() { e.down.Store(false) })
	case proxyRefused:
		undo := cluster.Proxy().Refuse(func(r *http.Request) bool { return r.UserAgent() == e.ua })
		e.undo = undo
		t.Cleanup(undo)
	}
	cluster.Proxy().CutAll()
	waitUntil(t, "both streams to try again while cut off", func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.tried["jobs"] && e.tried["pods"]
	})
}

// letIn undoes cutOff.
func (e *edgeWatcher) letIn() {
	e.down.Store(false)
	if e.undo != nil {
		e.undo()
	}
	e.cut.Store(false)
}

// checkStreams fails the test if the streams did not do what the variant
// stands for, and logs what they did.
func (e *edgeWatcher) checkStreams(t *testing.T, v edgeVariant) {
	t.Helper()
	if v.wantExpired {
		// Wait may end as soon as the Job stream has relisted; the pod
		// stream may meet its 410 a moment later.
		for deadline := time.Now().Add(edgeGuard); time.Now().Before(deadline) && !e.relistedExpired(); {
			time.Sleep(100 * time.Millisecond)
		}
	}
	e.tally.mu.Lock()
	relists := fmt.Sprint(e.tally.relists)
	var n, expired int
	for _, rs := range e.tally.relists {
		for _, x := range rs {
			n++
			if x {
				expired++
			}
		}
	}
	restarts := fmt.Sprint(e.tally.restarts)
	e.tally.mu.Unlock()
	t.Logf("streams: relists (expired per relist) %s, watch restarts %s", relists, restarts)
	if v.wantResume && n > 0 {
		// client-go relists after a watch that ends within a second with
		// nothing in it ("very short watch"), which a cut under load can
		// give: the variant then stands for a relist, and the test checks
		// the Result a relist gives.
		t.Logf("variant %s: the streams relisted (%s) instead of resuming their watch", v.name, relists)
	}
	if v.wantExpired && expired == 0 {
		t.Errorf("variant %s: no stream relisted after a 410 Gone (%s)", v.name, relists)
	}
}

// relisted reports whether a stream has relisted since it first synced.
func (e *edgeWatcher) relisted() bool {
	e.tally.mu.Lock()
	defer e.tally.mu.Unlock()
	for _, rs := range e.tally.relists {
		if len(rs) > 0 {
			return true
		}
	}
	return false
}

// relistedExpired reports whether a stream has relisted after a 410.
func (e *edgeWatcher) relistedExpired() bool {
	e.tally.mu.Lock()
	defer e.tally.mu.Unlock()
	for _, rs := range e.tally.relists {
		if slices.Contains(rs, true) {
			return true
		}
	}
	return false
}

// edgeWait runs Wait for the Job in a goroutine, with only a backstop
// deadline: awaitEdge bounds it once the Watcher is let back in.
func edgeWait(t *testing.T, w *Watcher, job *batchv1.Job, opts WaitOptions) (<-chan waitCall, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout+edgeGuard)
	t.Cleanup(cancel)
	ch := make(chan waitCall, 1)
	go func() {
		res, err := w.Wait(ctx, JobRef{Namespace: job.Namespace, Name: job.Name}, opts)
		ch <- waitCall{res, err}
	}()
	return ch, cancel
}

// awaitEdge returns what Wait returned, failing the test if it has not
// returned by deadline (then it cancels Wait and returns what that
// gives). deadline is edgeGuard after the Watcher was let back in.
func awaitEdge(t *testing.T, name string, ch <-chan waitCall, cancel context.CancelFunc, deadline time.Time) waitCall {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case c := <-ch:
		logCall(t, name, c)
		return c
	case <-timer.C:
	}
	cancel()
	c := <-ch
	t.Errorf("Wait(%s) hangs: no return within %v of the Watcher's streams coming back; cancelled, it returned %s, exit code %d, err %v (result %+v)",
		name, edgeGuard, c.res.Outcome, c.res.ExitCode, c.err, c.res)
	return c
}

func logCall(t *testing.T, name string, c waitCall) {
	t.Helper()
	r := c.res
	t.Logf("Wait(%s) = Outcome %s, ExitCode %d, NoExitCode %q, Reason %q, JobReason %q, Pod %q, err %v",
		name, r.Outcome, r.ExitCode, r.NoExitCode, r.Reason, r.JobReason, r.Pod, c.err)
}

// expectNoGuess checks a Result that must carry no exit code.
func expectNoGuess(t *testing.T, r Result) {
	t.Helper()
	if r.ExitCode != -1 || r.NoExitCode == "" {
		t.Errorf("exit code %d, NoExitCode %q: want -1 and why none", r.ExitCode, r.NoExitCode)
	}
}

// poll calls cond every 100ms until it is true, failing the test after
// e2eTimeout.
func poll(t *testing.T, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, e2eTimeout, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// waitFinished waits until the Job has its Complete or Failed condition.
func waitFinished(t *testing.T, client kubernetes.Interface, job *batchv1.Job) {
	t.Helper()
	poll(t, "Job "+job.Name+" to be Complete or Failed", func(ctx context.Context) bool {
		j, err := client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		return err == nil && jobFinished(j)
	})
}

// deleteAndWaitGone deletes the Job with background propagation and
// waits until it and its pods are gone.
func deleteAndWaitGone(t *testing.T, client kubernetes.Interface, job *batchv1.Job) {
	t.Helper()
	bg := metav1.DeletePropagationBackground
	if err := client.BatchV1().Jobs(job.Namespace).Delete(t.Context(), job.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatalf("delete job %s: %v", job.Name, err)
	}
	poll(t, "Job "+job.Name+" to be gone", func(ctx context.Context) bool {
		j, err := client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err) || (err == nil && j.UID != job.UID)
	})
	poll(t, "the pods of Job "+job.Name+" to be gone", func(ctx context.Context) bool {
		return len(podsOf(ctx, t, client, job.Namespace, job.UID)) == 0
	})
}

// podsOf lists the pods of the Job with uid (nil on an error).
func podsOf(ctx context.Context, t *testing.T, client kubernetes.Interface, ns string, uid types.UID) []corev1.Pod {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(uid)})
	if err != nil {
		t.Logf("list pods: %v", err)
		return []corev1.Pod{{}} // not known to be gone
	}
	return list.Items
}

// waitRunSeen waits until Wait has seen the Job's pod run.
func waitRunSeen(t *testing.T, rec *recorder) {
	t.Helper()
	waitUntil(t, "Wait to see the pod run", func() bool {
		e := rec.all()
		return len(e) > 0 && e[len(e)-1].Phase == corev1.PodRunning
	})
}

func compactIf(t *testing.T, v edgeVariant) {
	t.Helper()
	if !v.compact {
		return
	}
	rev, err := cluster.CompactEtcd(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compacted etcd at revision %d", rev)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// Wait follows Job X, whose pod runs. While the Watcher is cut off, X is
// deleted and a Job of the same name and labels is created, which
// succeeds. The run the caller started is the Job Wait pinned (by UID)
// when it began: it was Deleted, with no exit code, and the new Job's
// success is not its Result.
//
// When the streams relist (410, proxy503), the informer's Replace keys
// objects by namespace/name, so the new Job arrives as an update of the
// old one, not as its deletion; the stream's update handler (replaced, in
// stream.go) reports the old UID deleted first. Before it did, Wait kept
// the old Job's last state, running, and never returned.
func TestE2EEdgeJobDeletedAndRecreatedUnderTheSameNameWhileTheStreamWasDown(t *testing.T) {
	for _, v := range edgeVariants {
		t.Run(v.name, func(t *testing.T) {
			client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
			e := newEdgeWatcher(t, ns)
			job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}))
			var rec recorder
			ch, cancel := edgeWait(t, e.w, job, WaitOptions{Events: &rec})
			old := podOf(t, client, job, "Running", isRunning)
			waitRunSeen(t, &rec)

			e.cutOff(t, v.mode)
			deleteAndWaitGone(t, client, job)
			again := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) { j.GenerateName, j.Name = "", job.Name }))
			waitFinished(t, client, again)
			var newPods []string
			for _, p := range podsOf(t.Context(), t, client, ns, again.UID) {
				newPods = append(newPods, p.Name)
			}
			t.Logf("Job %s: old UID %s (pod %s), new UID %s (pods %v)", job.Name, job.UID, old.Name, again.UID, newPods)
			compactIf(t, v)
			e.letIn()

			c := awaitEdge(t, job.Name, ch, cancel, time.Now().Add(edgeGuard))
			if c.err != nil {
				t.Errorf("Wait: %v", c.err)
			}
			expect(t, c.res, Deleted, -1)
			expectNoGuess(t, c.res)
			if c.res.Pod != "" && c.res.Pod != old.Name {
				t.Errorf("Result of pod %s, not of the deleted Job's pod %s (the new Job's pods: %v)", c.res.Pod, old.Name, newPods)
			}
			e.checkStreams(t, v)
		})
	}
}

// Wait follows Jobs whose pods run. While the Watcher is cut off, each
// pod ends (exit code 3, and 0), its Job gets its Failed or Complete
// condition, and the Job is deleted, pods and all. When the watch
// resumes it replays the ends: Wait reports them with their exit codes.
// When the streams relist instead, nothing of the ends is left to read:
// the Jobs are gone as the streams last knew them, running, so the
// honest Result is Deleted with no exit code. Never a guessed one, and
// never a hang.
func TestE2EEdgeJobThatEndedAndWasDeletedWhileTheStreamWasDown(t *testing.T) {
	for _, v := range edgeVariants {
		t.Run(v.name, func(t *testing.T) {
			client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
			e := newEdgeWatcher(t, ns)
			runs := []struct {
				exitCode string
				outcome  Outcome
				code     int
			}{{"3", Failed, 3}, {"0", Succeeded, 0}}
			var jobs []*batchv1.Job
			var pods []*corev1.Pod
			var chans []<-chan waitCall
			var cancels []context.CancelFunc
			for _, r := range runs {
				job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h", tc.AnnotationExitCode: r.exitCode}))
				var rec recorder
				ch, cancel := edgeWait(t, e.w, job, WaitOptions{Events: &rec})
				pods = append(pods, podOf(t, client, job, "Running", isRunning))
				waitRunSeen(t, &rec)
				jobs, chans, cancels = append(jobs, job), append(chans, ch), append(cancels, cancel)
			}

			e.cutOff(t, v.mode)
			for i, job := range jobs {
				setDelay(t, client, pods[i], "0s")
				waitFinished(t, client, job)
				deleteAndWaitGone(t, client, job)
			}
			compactIf(t, v)
			e.letIn()

			deadline := time.Now().Add(edgeGuard)
			for i, r := range runs {
				t.Run("exit"+r.exitCode, func(t *testing.T) {
					c := awaitEdge(t, jobs[i].Name, chans[i], cancels[i], deadline)
					if c.err != nil {
						t.Errorf("Wait: %v", c.err)
					}
					if v.wantResume && !e.relisted() {
						expect(t, c.res, r.outcome, r.code)
						return
					}
					expect(t, c.res, Deleted, -1)
					expectNoGuess(t, c.res)
				})
			}
			e.checkStreams(t, v)
		})
	}
}

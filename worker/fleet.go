package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/fleet"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// Fleet makes the Workers of one Options.Name, in as many processes as
// wanted, replicas that share the runs and take over each other's:
//   - Start joins the fleet (a fleet.Member: a Lease of the replica's own,
//     renewed; see package fleet) and Close leaves it, giving the Lease
//     up, so the others take its runs over at once.
//   - Each Job a replica creates names it in jobcreate.AnnotationOwner,
//     and the run's watch settings in AnnotationWatch.
//   - When a replica departs (it left, or its Lease expired), each of its
//     runs not yet delivered goes to the live replica that fleet.Owner
//     picks for the run's ID. That replica claims the Job (an update of
//     the owner annotation with the Job's resourceVersion as precondition:
//     one claim wins), follows it as Attach does, on the shared streams,
//     and hands the Result to Sink. Replicas also look every Resync, so a
//     run whose Run call ended early (its ctx) is followed to its end by
//     its owner.
//   - A replica that has lost its Lease (fleet.Member.Lost) stops at once:
//     its Runs return an error matching ErrNotMember, with no Result
//     delivered, and it writes nothing more to those Jobs (its writes
//     test that it still owns the Job). It then joins again as a new
//     member, and its runs are taken over by whichever replica the hash
//     picks (itself, maybe). A Run that ends with ErrNotMember or
//     ErrClosed before RunSpec.Started was called may or may not have made
//     its Job: hand the run out again, to any replica; its Job, if made,
//     is adopted or left to its owner (an *OwnedError). Once Started has
//     been called the Job exists, and the fleet follows it to its end and
//     delivers it whatever becomes of the replica that made it.
//   - A run whose Job is deleted from outside while no live replica
//     follows it (its owner is gone) is delivered by the replica that
//     fleet.Owner picks, as the Job was last seen: Deleted (Cancelled if
//     it was cancelled), ExitCode -1. The replicas notice a Job gone
//     between two looks (changes of members and Resync), so one made and
//     deleted within a Resync of its owner's death is not seen.
//
// Delivery is at least once: a Result reaches Sink.Record (and Run's
// caller) from the replica that followed the run to its end, and a
// replica that dies between the end and the record leaves the run to be
// delivered again by the one that takes it over. Record it by
// Result.RunID, which makes it exactly once in the caller's store. Once
// recorded, the Job is marked AnnotationDelivered (with the TTL of
// Options.RetainUntilRecorded given back in the same patch); use
// RetainUntilRecorded, so a finished Job is not deleted before its Result
// is recorded by someone.
//
// The zero value is off: one process, as before.
type Fleet struct {
	// Enabled makes the Worker a replica of its fleet.
	Enabled bool
	// Sink records the Result of every run this replica follows to its
	// end, whether Run, Attach or a takeover followed it. Required.
	Sink Sink
	// Namespace holds the replicas' Leases. Default: Options.Namespace,
	// else the namespace the template renders to with no values.
	Namespace string
	// Identity names this replica. Default: $POD_NAME, else the host name
	// and a random suffix (see fleet.Options).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod time the Lease: see
	// fleet.Options (defaults 15 s, 10 s, 2 s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Resync is how often the replica looks for runs that no live replica
	// follows, besides each change of members. The look reads the shared
	// streams' caches: no request. Default: LeaseDuration.
	Resync time.Duration
}

// Sink records the Results of a fleet's runs (see Fleet).
type Sink interface {
	// Record records res; nil means recorded. It may be called more than
	// once for a run (by several replicas, one at a time), always with the
	// run's RunID.
	Record(ctx context.Context, res Result) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, res Result) error

// Record calls f.
func (f SinkFunc) Record(ctx context.Context, res Result) error { return f(ctx, res) }

// LogSink is a Sink that also takes the logs of the runs a replica takes
// over. Without it, a run taken over is followed without its log (its
// Result still has the LogTail).
type LogSink interface {
	Sink
	// RunLog returns where the log of the run goes, and the timestamp of
	// the last line already recorded: the lines at or before it are not
	// written again, and none after it is lost. A writer that is a
	// jobwatch.TimedWriter gets each line's timestamp, which is how the
	// caller knows it (give the Run's log writer one too). A zero time
	// means the whole log, from its start: the lines the former owner
	// wrote come again, each with the timestamp it had, by which a
	// TimedWriter knows a repeat; none is lost.
	RunLog(runID string) (w io.Writer, since time.Time)
}

// EventSink is a Sink that also takes the events of the runs a replica
// takes over (pod phases, Kueue's steps; see jobwatch.Event), as
// RunSpec.Events takes a Run's. An event's ID is stable across replicas
// (made of the pod's UID, phase and reason, or the Workload's
// condition), so the events a former owner reported come again with the
// same IDs: key them by ID. Without it, a run taken over reports no
// events.
type EventSink interface {
	Sink
	// RunEvents returns where the events of the run go.
	RunEvents(runID string) jobwatch.EventSink
}

// AnnotationWatch holds, on a Job a fleet replica made, the watch settings
// its template rendered to (JSON), so a replica that takes the run over
// follows it as Run would have.
const AnnotationWatch = "kubeworker.io/watch"

// AnnotationDelivered is set to "true" on a fleet's Job once its Result is
// recorded (Sink.Record returned nil); such a Job is never taken over.
const AnnotationDelivered = "kubeworker.io/delivered"

// ErrNotMember is the error of a fleet replica's Run while it is not a
// member of its fleet: before Start, after its Lease was lost (the runs it
// followed are then taken over by others) and until it has joined again.
var ErrNotMember = errors.New("worker: this replica is not a member of its fleet now")

// ErrOwned is matched, through errors.Is, by an *OwnedError.
var ErrOwned = errors.New("worker: the run is followed by another replica")

// OwnedError is the error of a fleet replica's Run for a run whose Job
// another live replica follows (the caller's queue handed the run to two
// replicas): the owner delivers its Result, this Run does not.
type OwnedError struct {
	// RunID is the run's ID.
	RunID string
	// PID names the run's Job.
	PID clusterid.PID
	// Owner is the replica that follows it (a fleet.Member's Name).
	Owner string
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("worker: run %s (Job %s/%s) is followed by replica %s", e.RunID, e.PID.Namespace, e.PID.Name, e.Owner)
}

// Is reports whether target is ErrOwned.
func (e *OwnedError) Is(target error) bool { return target == ErrOwned }

// JobLister is a JobWaiter that lists the Jobs of a namespace from its
// shared streams, at no request: the fleet reads it to find runs no live
// replica follows. *jobwatch.Watcher is one; without it the fleet lists
// through the JobClient.
type JobLister interface {
	Jobs(ctx context.Context, namespace string) ([]*batchv1.Job, error)
}

// watchSettings are what AnnotationWatch holds.
type watchSettings struct {
	PodWatchTimeoutSeconds int  `json:"pod_watch_timeout_seconds,omitempty"`
	JobWatchTimeoutSeconds int  `json:"job_watch_timeout_seconds,omitempty"`
	QueueTimeoutSeconds    int  `json:"queue_timeout_seconds,omitempty"`
	StreamOutput           bool `json:"stream_output,omitempty"`
}

func watchAnnotation(cfg *manifest.Config) string {
	data, _ := json.Marshal(watchSettings{
		PodWatchTimeoutSeconds: cfg.PodWatchTimeoutSeconds, JobWatchTimeoutSeconds: cfg.JobWatchTimeoutSeconds,
		QueueTimeoutSeconds: cfg.QueueTimeoutSeconds, StreamOutput: cfg.StreamOutput,
	})
	return string(data)
}

// watchConfig is the manifest.Config of a Job's AnnotationWatch; the
// defaults of the template rendered with no values when it has none.
func (w *Worker) watchConfig(ctx context.Context, job *batchv1.Job) (*manifest.Config, error) {
	v, ok := job.Annotations[AnnotationWatch]
	if !ok {
		_, cfg, err := w.opts.Parts.Preparer.Prepare(ctx, RunSpec{ID: job.Labels[manifest.LabelRunID]})
		return cfg, err
	}
	var s watchSettings
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return nil, fmt.Errorf("annotation %s: %w", AnnotationWatch, err)
	}
	return &manifest.Config{PodWatchTimeoutSeconds: s.PodWatchTimeoutSeconds, JobWatchTimeoutSeconds: s.JobWatchTimeoutSeconds,
		QueueTimeoutSeconds: s.QueueTimeoutSeconds, StreamOutput: s.StreamOutput}, nil
}

func (f Fleet) check() error {
	if !f.Enabled {
		return nil
	}
	if f.Sink == nil {
		return errors.New("Options.Fleet.Sink is required with Options.Fleet.Enabled")
	}
	if f.Resync < 0 {
		return fmt.Errorf("Options.Fleet.Resync %v is negative", f.Resync)
	}
	return nil
}

// fleetState is a replica's membership and the runs it follows.
type fleetState struct {
	w    *Worker
	opts Fleet

	mu        sync.Mutex
	member    *fleet.Member // nil while not a member
	ctx       context.Context
	cancel    context.CancelCauseFunc // ends ctx: ErrNotMember (the member was lost) or ErrClosed
	following map[string]bool         // runKey → followed in this process
	// seen holds the undelivered Jobs of each cluster at the takeover
	// loop's last look, gone the runs whose Job vanished undelivered
	// since (see notice).
	seen    map[string]map[string]*batchv1.Job
	gone    map[string]goneRun
	started bool
	closed  bool

	stop chan struct{}
	loop sync.WaitGroup
}

func newFleetState(w *Worker, opts Fleet) *fleetState {
	return &fleetState{w: w, opts: opts, following: map[string]bool{}, stop: make(chan struct{}),
		seen: map[string]map[string]*batchv1.Job{}, gone: map[string]goneRun{}}
}

// fleetKey names a run in a cluster.
func fleetKey(c *clusterParts, namespace, runID string) string {
	return c.name + "\x00" + namespace + "\x00" + runID
}

// start joins the fleet, once, and starts the takeover loop.
func (f *fleetState) start(ctx context.Context) error {
	f.mu.Lock()
	started := f.started
	f.started = true
	f.mu.Unlock()
	if started {
		return nil
	}
	if err := f.join(ctx); err != nil {
		f.mu.Lock()
		f.started = false
		f.mu.Unlock()
		return err
	}
	f.loop.Go(f.run)
	return nil
}

// join makes this replica a new member.
func (f *fleetState) join(ctx context.Context) error {
	ns, err := f.namespace()
	if err != nil {
		return err
	}
	m, err := fleet.Join(ctx, leaseClient(f.w.clusters.own.client), fleet.Options{
		Namespace: ns, Worker: f.w.opts.Name, Identity: f.opts.Identity,
		LeaseDuration: f.opts.LeaseDuration, RenewDeadline: f.opts.RenewDeadline, RetryPeriod: f.opts.RetryPeriod,
		Logger: f.w.log,
	})
	if err != nil {
		return fmt.Errorf("join the fleet: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.Join(ErrClosed, m.Leave(context.WithoutCancel(ctx)))
	}
	f.member = m
	f.ctx, f.cancel = context.WithCancelCause(context.Background())
	// The fence: the runs stop the moment the Lease is lost (or left),
	// not when the loop gets to it. Lost is closed by Leave too, so
	// this ends.
	cancel := f.cancel
	go func() {
		<-m.Lost()
		cancel(ErrNotMember)
	}()
	f.w.log.InfoContext(ctx, "joined the fleet", "member", m.Name(), "members", len(m.Members()))
	return nil
}

// leaseClient returns a client for the fleet's Leases that shares
// client's connection (its transport: TLS, credentials, user agent) but
// not its rate limiter, so that no burst of run requests delays a renewal
// past the renew deadline; client-go's leader election asks for a client
// of its own for the same reason. A client that is not a
// *kubernetes.Clientset is used as it is.
func leaseClient(client kubernetes.Interface) kubernetes.Interface {
	cs, ok := client.(*kubernetes.Clientset)
	if !ok || cs == nil {
		return client
	}
	rc, ok := cs.CoordinationV1().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil || rc.Client == nil {
		return client
	}
	u := rc.Get().URL()
	const path = "/apis/coordination.k8s.io/v1"
	if u == nil || u.Host == "" || !strings.HasSuffix(u.Path, path) {
		return client
	}
	cfg := &rest.Config{Host: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, path), QPS: 20, Burst: 40}
	out, err := kubernetes.NewForConfigAndClient(cfg, rc.Client)
	if err != nil {
		return client
	}
	return out
}

func (f *fleetState) namespace() (string, error) {
	if f.opts.Namespace != "" {
		return f.opts.Namespace, nil
	}
	if f.w.opts.Namespace != "" {
		return f.w.opts.Namespace, nil
	}
	nss, err := f.w.namespaces(f.w.clusters.own)
	if err != nil || len(nss) == 0 {
		return "", fmt.Errorf("the fleet's namespace (Options.Fleet.Namespace): %w", err)
	}
	return nss[0], nil
}

// current returns the member and the context its runs are followed
// under, or ErrNotMember.
func (f *fleetState) current() (*fleet.Member, context.Context, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.member == nil {
		return nil, nil, ErrNotMember
	}
	return f.member, f.ctx, nil
}

// hold marks a run as followed here; false if it already is.
func (f *fleetState) hold(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.following[key] {
		return false
	}
	f.following[key] = true
	return true
}

func (f *fleetState) unhold(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.following, key)
}

// run is the takeover loop: it looks for runs to take over at each change
// of members and every Resync, and joins again after a loss.
func (f *fleetState) run() {
	resync := f.opts.Resync
	if resync == 0 {
		resync = cmpDuration(f.opts.LeaseDuration, 15*time.Second)
	}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		m, _, _ := f.current()
		var lost, changes <-chan struct{}
		if m != nil {
			lost, changes = m.Lost(), m.Changes()
		}
		select {
		case <-f.stop:
			return
		case <-lost:
			f.fence(m)
		case <-changes:
			f.adopt(m)
		case <-tick.C:
			if m == nil {
				f.rejoin()
			} else {
				f.adopt(m)
			}
		}
	}
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// fence stops every run followed under the lost member, gives its Lease
// up if it still can, and joins again.
func (f *fleetState) fence(m *fleet.Member) {
	f.mu.Lock()
	if f.member == m {
		f.member = nil
		f.cancel(ErrNotMember)
	}
	f.mu.Unlock()
	f.w.log.Warn("lost the fleet's Lease: its runs are left to the others", "member", m.Name(), "error", m.Err())
	ctx, cancel := context.WithTimeout(context.Background(), cmpDuration(f.opts.RenewDeadline, 10*time.Second))
	defer cancel()
	if err := m.Leave(ctx); err != nil && !errors.Is(err, fleet.ErrLost) {
		f.w.log.Debug("leave after the loss", "member", m.Name(), "error", err)
	}
	f.rejoin()
}

// rejoin tries once to join again; the loop's ticker tries again later.
func (f *fleetState) rejoin() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-f.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := f.join(ctx); err != nil {
		f.w.log.Warn("could not join the fleet again; trying later", "error", err)
	}
}

// adopt takes over the runs, in every cluster given up front, whose owner
// is not a live member and that fleet.Owner gives to m, and follows this
// member's own runs that nothing here follows; then it delivers the runs
// whose Job vanished with no replica following it (deliverGone).
func (f *fleetState) adopt(m *fleet.Member) {
	_, ctx, err := f.current()
	if err != nil {
		return
	}
	live := m.Members()
	now := time.Now()
	for _, c := range f.w.clusters.upFront() {
		jobs, err := f.w.fleetJobs(ctx, c)
		if err != nil {
			f.w.log.Warn("look for runs to take over", "cluster", c.name, "error", err)
		} else {
			f.notice(c, jobs, live, now)
		}
		for _, job := range jobs {
			owner, ok := job.Annotations[jobcreate.AnnotationOwner]
			runID := job.Labels[manifest.LabelRunID]
			if !ok || runID == "" || job.Annotations[AnnotationDelivered] != "" {
				continue
			}
			mine := owner == m.Name()
			if !mine && (slices.Contains(live, owner) || fleet.Owner(live, runID) != m.Name()) {
				continue
			}
			key := fleetKey(c, job.Namespace, runID)
			if !f.hold(key) {
				continue
			}
			if !f.w.enter() {
				f.unhold(key)
				return
			}
			go func() {
				defer f.w.running.Done()
				defer f.unhold(key)
				f.takeOver(ctx, c, m, job, mine)
			}()
		}
	}
	f.deliverGone(ctx, m, live, now)
}

// fleetJobs returns the Worker's Jobs in c, from the shared streams when
// the Waiter lists them.
func (w *Worker) fleetJobs(ctx context.Context, c *clusterParts) ([]*batchv1.Job, error) {
	nss, err := w.namespaces(c)
	if err != nil {
		return nil, err
	}
	var out []*batchv1.Job
	var errs []error
	if l, ok := c.parts.Waiter.(JobLister); ok {
		for _, ns := range nss {
			jobs, err := l.Jobs(ctx, ns)
			errs = append(errs, err)
			for _, j := range jobs {
				// The stream keeps kubeworker.io/ labels only; its
				// selector chose kubeworker's Jobs.
				if j.Labels[LabelWorker] == w.opts.Name {
					out = append(out, j)
				}
			}
		}
		return out, errors.Join(errs...)
	}
	jobs, err := w.listJobs(ctx, c)
	for i := range jobs {
		out = append(out, &jobs[i])
	}
	return out, err
}

// takeOver claims job for m (unless it is m's already), follows it and
// delivers its Result to the Sink.
func (f *fleetState) takeOver(ctx context.Context, c *clusterParts, m *fleet.Member, job *batchv1.Job, mine bool) {
	w := f.w
	runID := job.Labels[manifest.LabelRunID]
	if !mine {
		claimed, err := w.claim(ctx, c, job, m)
		if err != nil {
			w.log.DebugContext(ctx, "did not take the run over", "run", runID, "job", job.Namespace+"/"+job.Name, "error", err)
			return
		}
		job = claimed
		w.log.InfoContext(ctx, "took the run over", "run", runID, "job", job.Namespace+"/"+job.Name, "member", m.Name())
	}
	pid, err := c.parts.Identity.PID(ctx, job.Namespace, job.Name)
	if err != nil {
		w.log.WarnContext(ctx, "take the run over", "run", runID, "error", err)
		return
	}
	cfg, err := w.watchConfig(ctx, job)
	if err != nil {
		w.log.WarnContext(ctx, "take the run over: the watch settings", "run", runID, "error", err)
		return
	}
	var logs io.Writer
	var since time.Time
	if ls, ok := f.opts.Sink.(LogSink); ok {
		logs, since = ls.RunLog(runID)
	}
	var events jobwatch.EventSink
	if es, ok := f.opts.Sink.(EventSink); ok {
		events = es.RunEvents(runID)
	}
	held := hold(job)
	res, err := w.followWith(ctx, c, pid, held, w.waitOptions(cfg, logs, since, events))
	if err != nil {
		w.log.DebugContext(ctx, "stopped following a run taken over", "run", runID, "error", err)
		return
	}
	_ = w.deliver(ctx, c, held, res, nil) // a failure is logged; the run is delivered again later
}

// claim makes m the owner of job, which must still name the owner the
// caller saw: an update with the Job's resourceVersion as precondition,
// so of several replicas only one wins. A conflict with another change
// (the Job controller's status) reads the Job again, up to three times.
// It returns the updated Job.
func (w *Worker) claim(ctx context.Context, c *clusterParts, seen *batchv1.Job, m *fleet.Member) (*batchv1.Job, error) {
	jobs, err := c.jobs(seen.Namespace)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		job, err := jobs.Get(ctx, seen.Name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		owner := job.Annotations[jobcreate.AnnotationOwner]
		switch {
		case job.UID != seen.UID:
			return nil, fmt.Errorf("the Job was replaced")
		case owner != seen.Annotations[jobcreate.AnnotationOwner]:
			return nil, &OwnedError{RunID: job.Labels[manifest.LabelRunID], Owner: owner}
		case job.Annotations[AnnotationDelivered] != "":
			return nil, fmt.Errorf("delivered already")
		}
		job.Annotations[jobcreate.AnnotationOwner] = m.Name()
		updated, err := jobs.Update(ctx, job, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) && attempt < 3 {
			continue
		}
		if apierrors.IsConflict(err) {
			return nil, fmt.Errorf("the Job kept changing: %w", err)
		}
		return updated, err
	}
}

// deleteOwned deletes job (foreground) only if it is still the same Job
// and still owner's: the delete carries the UID and the resourceVersion
// it checked as preconditions, so a replica whose clock lied about its
// Lease never deletes a run another replica has claimed. Retried on a
// transient failure under Options.Retry, and read again after a
// conflict.
func (w *Worker) deleteOwned(ctx context.Context, c *clusterParts, job heldJob, owner string) error {
	jobs, err := c.jobs(job.namespace)
	if err != nil {
		return err
	}
	pid := job.namespace + "/" + job.name
	for range 3 {
		got, err := retry.Value(ctx, w.retry(ctx, "get the Job to delete", pid), func(ctx context.Context) (*batchv1.Job, error) {
			return jobs.Get(ctx, job.name, metav1.GetOptions{})
		})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if got.UID != job.uid || got.Annotations[jobcreate.AnnotationOwner] != owner {
			w.log.DebugContext(ctx, "not deleting a Job this replica no longer owns", "job", pid, "owner", got.Annotations[jobcreate.AnnotationOwner])
			return nil
		}
		fg := metav1.DeletePropagationForeground
		err = w.retry(ctx, "delete the Job", pid).Do(ctx, func(ctx context.Context) error {
			return jobs.Delete(ctx, job.name, metav1.DeleteOptions{PropagationPolicy: &fg,
				Preconditions: &metav1.Preconditions{UID: &got.UID, ResourceVersion: &got.ResourceVersion}})
		})
		if !apierrors.IsConflict(err) {
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}
	}
	return fmt.Errorf("delete Job %s: it kept changing", pid)
}

// close stops the loop and every run followed under the member; leave
// gives the Lease up, once nothing follows a run any more.
func (f *fleetState) close() {
	f.mu.Lock()
	f.closed = true
	if f.cancel != nil {
		f.cancel(ErrClosed)
	}
	f.mu.Unlock()
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.loop.Wait()
}

func (f *fleetState) leave(ctx context.Context) error {
	f.mu.Lock()
	m := f.member
	f.member = nil
	f.mu.Unlock()
	if m == nil {
		return nil
	}
	if err := m.Leave(ctx); err != nil && !errors.Is(err, fleet.ErrLost) {
		return fmt.Errorf("leave the fleet: %w", err)
	}
	return nil
}

// fleetRun is Run's part of the fleet: it stamps job with the member and
// its watch settings and returns the context to follow the run under
// (ended when the member is lost) and a func to call when done.
func (f *fleetState) fleetRun(ctx context.Context, c *clusterParts, run RunSpec, job *batchv1.Job, cfg *manifest.Config) (context.Context, *fleet.Member, func(), error) {
	m, mctx, err := f.current()
	if err != nil {
		return nil, nil, nil, err
	}
	key := fleetKey(c, job.Namespace, run.ID)
	if !f.hold(key) {
		return nil, nil, nil, &OwnedError{RunID: run.ID, Owner: m.Name()}
	}
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Annotations[jobcreate.AnnotationOwner] = m.Name()
	job.Annotations[AnnotationWatch] = watchAnnotation(cfg)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(mctx, func() { cancel(context.Cause(mctx)) })
	return ctx, m, func() {
		stop()
		cancel(nil)
		f.unhold(key)
	}, nil
}

// adopted decides what Run does with a Job that Create found made by
// another Run of the same run: follow it (after claiming it from a
// departed owner), or leave it to its live owner (*OwnedError).
func (w *Worker) adopted(ctx context.Context, c *clusterParts, m *fleet.Member, job *batchv1.Job, pid clusterid.PID) (*batchv1.Job, error) {
	owner := job.Annotations[jobcreate.AnnotationOwner]
	if owner == m.Name() || job.Annotations[AnnotationDelivered] != "" {
		return job, nil
	}
	runID := job.Labels[manifest.LabelRunID]
	if owner != "" && slices.Contains(m.Members(), owner) {
		return nil, &OwnedError{RunID: runID, PID: pid, Owner: owner}
	}
	claimed, err := w.claim(ctx, c, job, m)
	var owned *OwnedError
	if errors.As(err, &owned) {
		owned.PID = pid
	}
	return claimed, err
}

// fenced names why a fleet ended a run's context: ErrNotMember (the
// member was lost) or ErrClosed.
func fenced(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrNotMember) || errors.Is(cause, ErrClosed) {
		if errors.Is(err, cause) {
			return err
		}
		return fmt.Errorf("%w: %w", cause, err)
	}
	return err
}

var _ JobLister = (*jobwatch.Watcher)(nil)

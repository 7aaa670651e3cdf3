package jobwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Queue positions, from Kueue's visibility API: an aggregated API
// (visibility.kueue.x-k8s.io, Kueue's VisibilityOnDemand) whose
// localqueues/{name}/pendingworkloads answers a PendingWorkloadsSummary,
// the Workloads waiting in that LocalQueue with their 0-based places in
// it and in its ClusterQueue. It is read, like the Workloads, as
// unstructured objects through the Watcher's dynamic client; Kueue is
// not a dependency.

// DefaultQueuePositionInterval is how often the positions of waiting runs
// are read when Options.QueuePositionInterval is zero.
const DefaultQueuePositionInterval = 5 * time.Second

// notServedRetry is how long positions are not asked for after an answer
// that says the visibility API is not served, or refused to this client.
const notServedRetry = 2 * time.Minute

// visibilityGVRs are the versions of the visibility API tried, in order:
// v1beta2 (Kueue v0.15 and later), then v1beta1.
var visibilityGVRs = []schema.GroupVersionResource{
	{Group: "visibility.kueue.x-k8s.io", Version: "v1beta2", Resource: "localqueues"},
	{Group: "visibility.kueue.x-k8s.io", Version: "v1beta1", Resource: "localqueues"},
}

// QueuePosition is a run's place in Kueue's queues while it waits for
// admission, as Kueue's visibility API gives it (Queueing.Position,
// Event.Position). Positions are 1-based: 1 is the head of the queue,
// the Workload Kueue tries to admit first. Higher priorities come first,
// then the older Workload.
type QueuePosition struct {
	// InLocalQueue is the run's place among the waiting Workloads of its
	// LocalQueue.
	InLocalQueue int
	// InClusterQueue is its place among those of the LocalQueue's
	// ClusterQueue, from every LocalQueue that feeds it.
	InClusterQueue int
	// At is when it was read (the Watcher's clock).
	At time.Time
}

// positions reads the places of the runs that wait for admission, one
// request per LocalQueue with waiting runs per interval, shared by all
// the runs waiting there. Its goroutine runs while a run waits and ends
// when none does, or at Close.
type positions struct {
	w        *Watcher
	interval time.Duration
	changed  chan struct{} // capacity 1: a queue was added or emptied

	mu      sync.Mutex
	queues  map[queueKey]*queuePlaces // the queues with waiting runs; guarded by mu
	polled  map[queueKey]time.Time    // when each queue was last asked; guarded by mu
	reads   uint64                    // successful reads so far; guarded by mu
	running bool                      // the goroutine runs; guarded by mu

	// Used by the goroutine only.
	version   int                        // index in visibilityGVRs that answered last
	pausedTil time.Time                  // not served: no request before then
	notServed bool                       // the last answer said the API is not served
	said      map[visibilityFailure]bool // log lines said once
}

// queueKey names a LocalQueue.
type queueKey struct{ ns, lq string }

// queuePlaces is one LocalQueue's waiting runs and its last read.
type queuePlaces struct {
	runs   map[*positionSub]struct{}
	due    time.Time // when it is asked next
	read   uint64    // positions.reads at its last read; 0: never read
	at     time.Time // when it was last read
	byName map[string]pendingWorkload
	byJob  map[types.UID]pendingWorkload
}

// positionSub is one waiting run's interest in its LocalQueue.
type positionSub struct {
	p   *positions
	key queueKey
	wt  *waiter
}

// newPositions returns the Watcher's position reader, nil when positions
// are not read: no dynamic client, or a negative interval.
func newPositions(w *Watcher) *positions {
	interval := w.opts.QueuePositionInterval
	if w.dyn == nil || interval < 0 {
		return nil
	}
	if interval == 0 {
		interval = DefaultQueuePositionInterval
	}
	return &positions{w: w, interval: interval, changed: make(chan struct{}, 1),
		queues: map[queueKey]*queuePlaces{}, polled: map[queueKey]time.Time{}, said: map[visibilityFailure]bool{}}
}

// join registers a run waiting in the LocalQueue key; its waiter is woken
// after each read of that queue. It starts the goroutine if need be.
func (p *positions) join(key queueKey, wt *waiter) *positionSub {
	s := &positionSub{p: p, key: key, wt: wt}
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[key]
	if q == nil {
		// A queue asked for a moment ago waits for its interval.
		q = &queuePlaces{runs: map[*positionSub]struct{}{}, due: p.polled[key].Add(p.interval)}
		p.queues[key] = q
		p.poke()
	}
	q.runs[s] = struct{}{}
	if !p.running && p.w.goroutine(p.run) {
		p.running = true
	}
	return s
}

// leave ends the run's interest; the last run of a queue ends its reads.
func (s *positionSub) leave() {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[s.key]
	if q == nil {
		return
	}
	delete(q.runs, s)
	if len(q.runs) == 0 {
		delete(p.queues, s.key)
		p.poke()
	}
}

// place returns the run's position in the last read of its queue, found
// by its Workload's name or its Job's UID, and which read that was (0:
// none yet).
func (s *positionSub) place(job types.UID, workload string) (QueuePosition, uint64, bool) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queues[s.key]
	if q == nil {
		return QueuePosition{}, 0, false
	}
	pw, ok := q.byName[workload]
	if !ok {
		pw, ok = q.byJob[job]
	}
	if !ok {
		return QueuePosition{}, q.read, false
	}
	return QueuePosition{InLocalQueue: pw.inLQ + 1, InClusterQueue: pw.inCQ + 1, At: q.at}, q.read, true
}

// poke wakes the goroutine; p.mu is held.
func (p *positions) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// run reads each queue when it is due, until no run waits or the
// Watcher closes.
func (p *positions) run() {
	for {
		now := p.w.clock.Now()
		p.mu.Lock()
		if len(p.queues) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		var due []queueKey
		var next time.Time
		for key, q := range p.queues {
			at := latest(q.due, p.pausedTil)
			if !at.After(now) {
				due = append(due, key)
			} else if next.IsZero() || at.Before(next) {
				next = at
			}
		}
		for key, at := range p.polled { // forget what no longer holds a queue back
			if p.queues[key] == nil && now.Sub(at) >= p.interval {
				delete(p.polled, key)
			}
		}
		p.mu.Unlock()
		if len(due) > 0 {
			slices.SortFunc(due, func(a, b queueKey) int { return cmp.Or(cmp.Compare(a.ns, b.ns), cmp.Compare(a.lq, b.lq)) })
			for _, key := range due {
				p.read(key)
				if p.pausedTil.After(p.w.clock.Now()) {
					break // the others wait for the pause
				}
			}
			continue
		}
		timer := p.w.clock.NewTimer(next.Sub(now))
		select {
		case <-timer.C():
		case <-p.changed:
		case <-p.w.ctx.Done():
			timer.Stop()
			p.mu.Lock()
			p.running = false
			p.mu.Unlock()
			return
		}
		timer.Stop()
	}
}

// read asks for the pending Workloads of the LocalQueue key, keeps their
// places and wakes the queue's runs.
func (p *positions) read(key queueKey) {
	began := p.w.clock.Now()
	ctx, cancel := context.WithTimeout(p.w.ctx, getTimeout)
	u, err := p.get(ctx, key)
	cancel()
	now := p.w.clock.Now()
	f := failNone
	if err != nil {
		f = classifyVisibility(err)
		p.failed(key, f, err, now)
	}
	if p.notServed && (f == failNone || f == failNoQueue) {
		p.notServed = false
		p.w.logger.Debug("jobwatch: Kueue's visibility API is served now; reading queue positions")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.polled[key] = began
	q := p.queues[key]
	if q == nil {
		return
	}
	q.due = began.Add(p.interval)
	if f == failRefused { // permissions are per namespace: this queue only
		q.due = began.Add(notServedRetry)
	}
	if err != nil {
		return
	}
	p.reads++
	q.read, q.at = p.reads, now
	q.byName, q.byJob = map[string]pendingWorkload{}, map[types.UID]pendingWorkload{}
	for _, pw := range parsePending(u.Object) {
		if pw.name != "" {
			q.byName[pw.name] = pw
		}
		for _, uid := range pw.jobs {
			q.byJob[uid] = pw
		}
	}
	for s := range q.runs {
		s.wt.poke()
	}
}

// get reads a LocalQueue's pending Workloads in the version that answered
// last, or in the others if that one is not served. One page: Kueue's
// default limit, 1000 Workloads (a dynamic client's get takes no limit or
// offset).
func (p *positions) get(ctx context.Context, key queueKey) (*unstructured.Unstructured, error) {
	var err error
	for i := range visibilityGVRs {
		v := (p.version + i) % len(visibilityGVRs)
		var u *unstructured.Unstructured
		u, err = p.w.dyn.Resource(visibilityGVRs[v]).Namespace(key.ns).Get(ctx, key.lq, metav1.GetOptions{}, "pendingworkloads")
		if err == nil || classifyVisibility(err) == failNoQueue {
			p.version = v
			return u, err
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return nil, err
}

// failed logs a failed read and, when the API is not served, pauses
// every read for notServedRetry (read pauses a refused queue alone).
func (p *positions) failed(key queueKey, f visibilityFailure, err error, now time.Time) {
	log := p.w.logger.With("namespace", key.ns, "localQueue", key.lq, "err", err)
	switch f {
	case failNotServed:
		p.pausedTil, p.notServed = now.Add(notServedRetry), true
		p.once(f, func() {
			log.Debug("jobwatch: Kueue's visibility API is not served; queue positions are not reported", "retry", notServedRetry)
		})
	case failRefused:
		p.once(f, func() {
			log.Info("jobwatch: cannot read queue positions; the client needs get on localqueues/pendingworkloads in visibility.kueue.x-k8s.io; queue positions are not reported", "retry", notServedRetry)
		})
	case failNoQueue:
		log.Debug("jobwatch: Kueue does not know the LocalQueue; no queue positions")
	default:
		log.Debug("jobwatch: reading queue positions failed; retrying")
	}
}

// once runs say the first time a failure of kind f is seen.
func (p *positions) once(f visibilityFailure, say func()) {
	if !p.said[f] {
		p.said[f] = true
		say()
	}
}

// visibilityFailure is what a failed read of pending Workloads means.
type visibilityFailure int

const (
	// failNone: no failure.
	failNone visibilityFailure = iota
	// failTransient: anything else (a timeout, 429, 5xx other than 503, an
	// odd answer); asked again at the next interval.
	failTransient
	// failNotServed: the API is not served here (404 other than Kueue's own
	// for the LocalQueue, 503: its APIService has no server behind it).
	failNotServed
	// failRefused: Forbidden or Unauthorized.
	failRefused
	// failNoQueue: Kueue's own 404: it does not know the LocalQueue.
	failNoQueue
)

// classifyVisibility says what err, from a read of pending Workloads,
// means.
func classifyVisibility(err error) visibilityFailure {
	switch {
	case err == nil:
		return failNone
	case apierrors.IsNotFound(err):
		var s apierrors.APIStatus
		if errors.As(err, &s) {
			if d := s.Status().Details; d != nil && d.Kind == "localqueue" && d.Group == visibilityGVRs[0].Group {
				return failNoQueue
			}
		}
		return failNotServed
	case apierrors.IsServiceUnavailable(err):
		return failNotServed
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return failRefused
	}
	return failTransient
}

// pendingWorkload is one item of a PendingWorkloadsSummary.
type pendingWorkload struct {
	name       string
	jobs       []types.UID // its owners of kind Job
	inLQ, inCQ int         // 0-based, as Kueue gives them
}

// parsePending reads the items of a PendingWorkloadsSummary. It never
// fails: an item without a name or a Job owner, or whose positions are
// missing, negative or not whole numbers, is left out; anything else
// odd is ignored.
func parsePending(o map[string]any) []pendingWorkload {
	items, _ := o["items"].([]any)
	var out []pendingWorkload
	for _, item := range items {
		m, _ := item.(map[string]any)
		meta, _ := m["metadata"].(map[string]any)
		pw := pendingWorkload{name: str(meta, "name")}
		refs, _ := meta["ownerReferences"].([]any)
		for _, ref := range refs {
			r, _ := ref.(map[string]any)
			if uid := str(r, "uid"); uid != "" && str(r, "kind") == "Job" {
				pw.jobs = append(pw.jobs, types.UID(uid))
			}
		}
		var okLQ, okCQ bool
		pw.inLQ, okLQ = place(m["positionInLocalQueue"])
		pw.inCQ, okCQ = place(m["positionInClusterQueue"])
		if okLQ && okCQ && (pw.name != "" || len(pw.jobs) > 0) {
			out = append(out, pw)
		}
	}
	return out
}

// place returns a JSON number that is a whole number from 0 to
// MaxInt32 (Kueue's positions are int32).
func place(v any) (int, bool) {
	switch n := v.(type) {
	case int64:
		if n >= 0 && n <= math.MaxInt32 {
			return int(n), true
		}
	case float64:
		if n >= 0 && n <= math.MaxInt32 && n == math.Trunc(n) {
			return int(n), true
		}
	}
	return 0, false
}

// followPosition keeps a waiting run registered for its queue's
// positions, and takes in a new read: Queueing.Position, and an event
// when it is first known or changes. A run no longer waiting leaves.
func (r *run) followPosition() {
	k := r.kq
	switch {
	case k.waiting && k.pos == nil && r.w.pos != nil:
		k.pos = r.w.pos.join(queueKey{ns: r.ref.Namespace, lq: k.q.LocalQueue}, r.wt)
	case !k.waiting && k.pos != nil:
		k.pos.leave()
		k.pos = nil
	}
	if k.pos == nil {
		return
	}
	pos, read, ok := k.pos.place(r.job.UID, k.q.Workload)
	if read == k.posRead {
		return
	}
	k.posRead = read
	if !ok {
		return
	}
	last := k.q.Position
	k.q.Position = &pos
	if last != nil && last.InLocalQueue == pos.InLocalQueue && last.InClusterQueue == pos.InClusterQueue {
		return
	}
	if r.events != nil {
		r.events.observe(r.job.UID, positionEvent(r.job.UID, r.ref.Name, k.q.LocalQueue, pos))
	}
}

// positionEvent describes a new position as an Event. Its ID is a hash
// of the Job's UID, the position and when it was read: each reading is
// its own event.
func positionEvent(uid types.UID, job, lq string, pos QueuePosition) Event {
	msg := fmt.Sprintf("position %d in LocalQueue %s, %d in its ClusterQueue", pos.InLocalQueue, lq, pos.InClusterQueue)
	key := fmt.Sprintf("%s\x00%s\x00%d\x00%d\x00%s", ReasonQueuePosition, lq, pos.InLocalQueue, pos.InClusterQueue, pos.At.UTC().Format(time.RFC3339Nano))
	return Event{ID: eventID(uid, "", key), Job: job, Reason: ReasonQueuePosition, Message: msg, Position: new(pos), Time: pos.At}
}

// leavePosition ends the run's interest in positions; Wait calls it as
// it returns.
func (k *queueRun) leavePosition() {
	if k.pos != nil {
		k.pos.leave()
		k.pos = nil
	}
}

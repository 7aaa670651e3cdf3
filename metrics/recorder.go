package metrics

import "time"

// Recorder receives what kubeworker measures. Its methods are called
// from many goroutines at once, often on a request's or a watch's path,
// and must be quick and safe for concurrent use. An implementation
// should embed Discard, so that a method added to Recorder later has a
// no-op default.
type Recorder interface {
	// RunStarted is called when a Worker starts a run.
	RunStarted()
	// RunFinished is called when that run ends, with its outcome as
	// jobwatch.Outcome's String names it ("Succeeded", "OOMKilled", ...);
	// "Unknown" when the run ended with an error (not created, not
	// followed to its end). Runs in flight are those started and not yet
	// finished.
	RunFinished(outcome string)
	// CreateAttempt is called for each attempt to create a run's Job;
	// retry is true for every attempt after the first.
	CreateAttempt(retry bool)
	// WatchRestart is called when a shared watch stream of resource
	// ("jobs", "pods") opens its watch again, resuming from the last
	// version seen: after the server ended the watch (a timeout), a
	// dropped connection or an error.
	WatchRestart(resource string)
	// Relist is called when a shared watch stream of resource has read
	// every object again after its first sync (a list, or a watch that
	// sends its initial events). expired is true when the stream's last
	// watch or list had failed with 410 Gone (reason Expired), the usual
	// cause: the version it resumed from was compacted away.
	Relist(resource string, expired bool)
	// LogReconnect is called when a log stream that dropped, or a read
	// of the end of a log that failed, is opened again.
	LogReconnect()
	// PodStartLatency is called once per followed Job whose pod started,
	// with the time from the Job's creation to the start of the first
	// pod's run container (both server timestamps, whole seconds).
	PodStartLatency(d time.Duration)
	// ResultLatency is called once per Result whose run container
	// terminated, with the time from its termination (a server
	// timestamp, whole seconds, so up to a second too long) to the
	// Result being returned.
	ResultLatency(d time.Duration)
	// APIRequest is called for each request made through a transport
	// wrapped by WrapTransport, once it has an answer: code is its HTTP
	// status code, or 0 when none came (a dropped connection, a timeout).
	APIRequest(req Request, code int)

	// AdmissionWait is called once per admission by Kueue of a followed
	// Job that the Watcher saw waiting for it, with the time it waited
	// (server timestamps, whole seconds): from the Job's creation for
	// its first admission (requeued false), from its eviction for a
	// later one (requeued true).
	AdmissionWait(d time.Duration, requeued bool)
	// Preempted is called when Kueue preempts a followed Job (its
	// Workload is evicted with reason Preempted).
	Preempted()
	// Requeued is called when Kueue puts a followed Job that it evicted
	// back in its queue.
	Requeued()
	// QueueWaitStarted is called when a followed Job starts waiting for
	// Kueue's admission: when its Wait first sees it queued, and again
	// after each eviction. QueueWaitEnded is called once for each, when
	// the Job is admitted or its Wait returns. Runs queued now are those
	// started and not ended.
	QueueWaitStarted()
	// QueueWaitEnded: see QueueWaitStarted.
	QueueWaitEnded()
}

// Discard is a Recorder that records nothing: the default wherever a
// Recorder is optional. Embed it in a Recorder of your own.
type Discard struct{}

var _ Recorder = Discard{}

// RunStarted does nothing.
func (Discard) RunStarted() {}

// RunFinished does nothing.
func (Discard) RunFinished(string) {}

// CreateAttempt does nothing.
func (Discard) CreateAttempt(bool) {}

// WatchRestart does nothing.
func (Discard) WatchRestart(string) {}

// Relist does nothing.
func (Discard) Relist(string, bool) {}

// LogReconnect does nothing.
func (Discard) LogReconnect() {}

// PodStartLatency does nothing.
func (Discard) PodStartLatency(time.Duration) {}

// ResultLatency does nothing.
func (Discard) ResultLatency(time.Duration) {}

// APIRequest does nothing.
func (Discard) APIRequest(Request, int) {}

// AdmissionWait does nothing.
func (Discard) AdmissionWait(time.Duration, bool) {}

// Preempted does nothing.
func (Discard) Preempted() {}

// Requeued does nothing.
func (Discard) Requeued() {}

// QueueWaitStarted does nothing.
func (Discard) QueueWaitStarted() {}

// QueueWaitEnded does nothing.
func (Discard) QueueWaitEnded() {}

// OrDiscard returns r, or Discard if r is nil.
func OrDiscard(r Recorder) Recorder {
	if r == nil {
		return Discard{}
	}
	return r
}

package jobwatch

import (
	"io"
	"log/slog"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/clock"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/retry"
)

// DefaultPodStartTimeout is how long Wait lets a pod stay Pending when
// WaitOptions.PodStartTimeout is zero, as Prefect's
// pod_watch_timeout_seconds default.
const DefaultPodStartTimeout = 60 * time.Second

// Options configures a Watcher. The zero value works.
type Options struct {
	// Selector chooses the Jobs and pods that the shared streams list and
	// watch, in every namespace; a Job is followed only if both it and its
	// pod template's labels match. Default:
	// app.kubernetes.io/managed-by=kubeworker, which manifest.Prepare sets
	// on both. labels.Everything() follows every Job (and caches every Job
	// and pod) of a namespace.
	Selector labels.Selector

	// Logger receives the Watcher's logs and those of the client-go
	// informers under it: a watch that expired (410 Gone) or dropped, and
	// log stream reconnects, at Debug; errors that need a person, such as
	// Forbidden, at Warn. Secrets are never logged. Default: discard.
	Logger *slog.Logger

	// ResyncPeriod makes the informers replay their cache every period.
	// Wait is level-driven and needs no resync. Default: 0, none.
	ResyncPeriod time.Duration

	// Clock times every timeout and backoff of Wait. Default: the real
	// clock.
	Clock clock.WithTicker

	// Metrics receives what the Watcher measures: its shared streams'
	// watch restarts and relists (410 Gone among them), log stream
	// reconnects, per followed Job the time from creation to pod start
	// and from the run container's end to the Result, and for Jobs queued
	// in Kueue their waits for admission, preemptions, requeues and how
	// many wait now. The API requests themselves are counted by the
	// client's transport (see metrics.WrapTransport). Default: none
	// (metrics.Discard).
	Metrics metrics.Recorder

	// Retry paces the retries of the last read of a finished pod's log,
	// and of the read of a log's tail for Result.LogTail, on a transient
	// failure (retry.Retriable): timeouts, 429, 5xx,
	// dropped connections. Default: the zero retry.Policy, back-off with
	// jitter for up to retry.DefaultDeadline. The rest of a Wait retries
	// for as long as the Wait lasts, with no policy to set: the shared
	// streams list and watch again after any failure (client-go's
	// reflector back-off), a Job's GET and its pods' list are asked again
	// each second, and a dropped log follow stream resumes within 2 s
	// from its last line.
	Retry retry.Policy

	// Dynamic reads Kueue's Workloads, for the Jobs that carry Kueue's
	// queue-name label (manifest.LabelQueueName): see the package doc's
	// Kueue section. Default: one made from the kubernetes.Interface
	// given to New when it is a *kubernetes.Clientset, sharing its
	// connection (transport, authentication, rate limiter). With any
	// other client (a fake clientset, a wrapper) and no Dynamic, Kueue is
	// not followed: a queued Job is followed as a suspended Job, and
	// WaitOptions.QueueTimeout still applies. Queue positions are read
	// through it too.
	Dynamic dynamic.Interface

	// QueuePositionInterval is how often the places of runs waiting for
	// Kueue's admission are read from Kueue's visibility API
	// (Queueing.Position, ReasonQueuePosition events; see the package
	// doc's Kueue section): one request per LocalQueue that has waiting
	// runs per interval, shared by all the runs waiting there, and none
	// while no run waits. Where the API is not served it is asked again
	// every 2 minutes only. Default: 0, DefaultQueuePositionInterval
	// (5 s); negative: positions are not read.
	QueuePositionInterval time.Duration
}

func (o Options) selector() labels.Selector {
	if o.Selector == nil {
		return labels.SelectorFromSet(labels.Set{manifest.LabelManagedBy: manifest.ManagedBy})
	}
	return o.Selector
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) clock() clock.WithTicker {
	if o.Clock == nil {
		return clock.RealClock{}
	}
	return o.Clock
}

// WaitOptions configures one Wait. The zero value works: the pod's first
// container, a 60 s pod start timeout, no total deadline, no log written
// (its last DefaultLogTailLines lines in Result.LogTail), no events.
type WaitOptions struct {
	// Container names the run container, whose exit code and logs count.
	// Name it when the pod has sidecars listed before it. Default: the
	// pod's first container.
	Container string

	// PodStartTimeout bounds how long the Job may go without a pod that
	// has left Pending, counted from the start of Wait (Prefect's
	// pod_watch_timeout_seconds). When it passes, Wait returns a
	// Diagnosis and the Outcome ImagePullError, CrashLoop, Unschedulable,
	// CannotCreatePod or NeverStarted, and leaves the Job alone. It
	// applies only until a first pod starts. While the Job is suspended
	// (queued) before then, it does not run; it starts afresh, in full,
	// when the Job is resumed. Two causes end the wait at once: an image
	// name that can never be pulled (InvalidImageName), and a pod the API
	// server refuses to create (quota, a missing service account, Pod
	// Security, admission; CannotCreatePod). Other pending reasons may
	// pass (the kubelet retries pulls, an autoscaler may add a node), so
	// they are judged at the timeout. Default: DefaultPodStartTimeout;
	// negative: none.
	PodStartTimeout time.Duration

	// Deadline is a total deadline for the whole Wait, from its start to
	// the Job's end, whatever happens in between (Prefect's
	// job_watch_timeout_seconds, which is total there too). When it
	// passes, Wait returns Outcome TimedOut and leaves the Job running.
	// Default: 0, none; use ctx to stop waiting without a Result.
	Deadline time.Duration

	// Logs receives the run container's log, line by line without
	// timestamps (a TimedWriter gets each line's too), from each pod of
	// the Job in turn (oldest first), while Wait runs. Wait returns only after the last line is written. A
	// failing Logs (or log stream) is logged and never changes the
	// Result. Default: nil, no log is written (and only its tail read,
	// see LogTailLines).
	Logs io.Writer

	// LogsSince skips log lines timestamped at or before it; pass a
	// previous Result.LastLogTime, or the timestamp of the last line a
	// TimedWriter recorded, to continue a log without repeats.
	// Default: zero, the whole log.
	LogsSince time.Time

	// LogTailLines is how many of the last lines of the run container's
	// log Result.LogTail keeps, so that a failed run says why without
	// kubectl. With Logs, the tail comes from the same stream, at no
	// extra request; without, Wait reads it once a run has ended other
	// than Succeeded, with one request for that many lines (no stream is
	// followed), so a success costs no request for it. Default:
	// 0, DefaultLogTailLines; negative: no tail. A template's
	// stream_output false means no log is read at all: a caller that
	// honours it (worker does) leaves Logs nil and sets LogTailLines
	// negative.
	LogTailLines int

	// Events receives each new pod phase, the Job's queueing and
	// resumption, and what Kueue does with it (see Event). Default: nil,
	// none.
	Events EventSink

	// QueueTimeout bounds how long a Job with Kueue's queue-name label
	// may wait for Kueue's admission: from the start of Wait, and afresh
	// from each eviction (a preemption) after which it waits again. When
	// it passes, Wait returns the Outcome NotAdmitted with a Diagnosis
	// that names the LocalQueue and gives Kueue's last word on it, and
	// leaves the Job queued. The time already spent admitted does not
	// count. Default: 0, none. It does not apply to a Job without the
	// label (a suspended Job waits for whoever resumes it).
	QueueTimeout time.Duration
}

func (o WaitOptions) podStartTimeout() time.Duration {
	if o.PodStartTimeout == 0 {
		return DefaultPodStartTimeout
	}
	return o.PodStartTimeout
}

// TimedWriter is a WaitOptions.Logs writer that takes each log line with
// its timestamp: the container runtime's, as the API server gives it,
// increasing within a container's log (lines rarely share one; LogsSince
// then skips them all). A caller that records
// the timestamp of the last line it saved can continue the log with no
// line lost or repeated (WaitOptions.LogsSince), from any process; and
// a line written again (a log read from its start once more) is known
// by its timestamp. Wait calls WriteLine, never Write, for each line,
// from one goroutine at a time.
type TimedWriter interface {
	io.Writer
	// WriteLine writes one line, newline included (the last line of a
	// finished pod may have none). ts is zero for a line whose timestamp
	// could not be read.
	WriteLine(ts time.Time, line []byte) error
}

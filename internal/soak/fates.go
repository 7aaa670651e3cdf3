package soak

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/kubeworker/kubeworker/clustertest"
)

// Fate is how a run is scripted to end: the pod annotations that script
// it on the local cluster, the template values, and what a worker must
// report for it.
type Fate struct {
	// Kind names the fate ("exit", "oom", "retry", "deleted", ...).
	Kind string
	// Outcome and ExitCode are what the run's Result must say.
	Outcome  string
	ExitCode int
	// Lines are the run container's log, per pod that runs.
	Lines []string
	// Pods is how many pods run it (2 for a pod that fails once and
	// succeeds on the Job's retry), 0 for one never scheduled.
	Pods int
	// Delete says the soak deletes the run's Job from outside once its
	// pod runs.
	Delete bool
	// Duration is how long each pod runs.
	Duration time.Duration

	annotations map[string]string
	values      map[string]any
}

// Values are the template values the run is handed with.
func (f Fate) Values() map[string]any {
	pa := map[string]any{}
	for k, v := range f.annotations {
		pa[k] = v
	}
	v := map[string]any{"pod_annotations": pa, "finished_job_ttl": 600}
	for k, x := range f.values {
		v[k] = x
	}
	return v
}

// fateKinds are the fates a run may have; the soak picks them in turn
// from a shuffled order, so each appears as often as the others.
var fateKinds = []string{"succeed", "exit", "oom", "evict", "retry", "retry-fail", "unschedulable", "deleted", "long-lines", "partial"}

// newFate scripts run id of kind with a duration of up to maxDur, drawn
// from rng.
func newFate(rng *rand.Rand, id, kind string, maxDur time.Duration) Fate {
	dur := time.Second + time.Duration(rng.Int64N(int64(maxDur-time.Second)+1))
	dur = dur.Truncate(100 * time.Millisecond)
	f := Fate{Kind: kind, Pods: 1, Duration: dur, annotations: map[string]string{}, values: map[string]any{"backoff_limit": 0}}
	n := 1 + rng.IntN(40)
	if rng.IntN(10) == 0 {
		n = 200 + rng.IntN(300)
	}
	for i := range n {
		f.Lines = append(f.Lines, fmt.Sprintf("%s line %d of %d", id, i+1, n))
	}
	switch kind {
	case "succeed":
		f.Outcome = "Succeeded"
	case "exit":
		f.ExitCode = 1 + rng.IntN(125)
		f.annotations[clustertest.AnnotationExitCode] = fmt.Sprint(f.ExitCode)
		f.Outcome = "Failed"
	case "oom":
		f.annotations[clustertest.AnnotationExitCode] = "137"
		f.annotations[clustertest.AnnotationReason] = "OOMKilled"
		f.Outcome, f.ExitCode = "OOMKilled", 137
	case "evict":
		f.annotations[clustertest.AnnotationEvict] = "The node was low on resource: memory."
		f.Outcome, f.ExitCode = "Evicted", 137
	case "retry":
		// Fails once, succeeds on the Job's retry.
		f.annotations[clustertest.AnnotationFailAttempts] = "1"
		f.values["backoff_limit"] = 1
		f.Outcome, f.Pods = "Succeeded", 2
	case "retry-fail":
		// Fails, and fails again with another code on the last retry.
		f.annotations[clustertest.AnnotationFailAttempts] = "1"
		f.annotations[clustertest.AnnotationExitCode] = "7"
		f.values["backoff_limit"] = 1
		f.Outcome, f.ExitCode, f.Pods = "BackoffLimitExceeded", 7, 2
	case "unschedulable":
		f.values["cpu_request"] = "1001"
		// Long enough for the scheduler to say why, even when a fault
		// holds its first try back: at the timeout a pod it has not yet
		// tried is NeverStarted, and rightly so.
		f.values["pod_watch_timeout_seconds"] = 30
		f.Outcome, f.ExitCode, f.Pods, f.Lines = "Unschedulable", -1, 0, nil
	case "deleted":
		f.Delete = true
		f.Outcome, f.ExitCode = "Deleted", -1
		dur = time.Hour
	case "long-lines":
		// A few lines of 1 to 16 KB: the pod's annotations hold at most
		// 256 KiB.
		f.Outcome = "Succeeded"
		f.Lines = f.Lines[:min(len(f.Lines), 9)]
		for i := range f.Lines {
			if i%3 == 0 {
				f.Lines[i] += " " + strings.Repeat(string(rune('a'+i%26)), 1000+rng.IntN(15000))
			}
		}
	case "partial":
		// The last line has no newline.
		f.annotations[clustertest.AnnotationLogPartial] = "true"
		f.Outcome = "Succeeded"
	}
	f.Duration = dur
	f.annotations[clustertest.AnnotationDelay] = dur.String()
	if f.Lines != nil {
		f.annotations[clustertest.AnnotationLog] = strings.Join(f.Lines, "\n")
	}
	return f
}

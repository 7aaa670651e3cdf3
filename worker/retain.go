package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// AnnotationTTL holds, on a Job created under Options.RetainUntilRecorded,
// the spec.ttlSecondsAfterFinished its template asked for. The Job is
// created without a TTL; the Worker that delivers the run's Result (Run,
// Attach or Sweep, whichever Worker it is) sets the TTL from this value.
const AnnotationTTL = "kubeworker.io/ttl-seconds-after-finished"

// retain moves job's ttlSecondsAfterFinished into AnnotationTTL, before
// the Job is created and hashed.
func retain(job *batchv1.Job) {
	ttl := job.Spec.TTLSecondsAfterFinished
	if ttl == nil {
		return
	}
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Annotations[AnnotationTTL] = strconv.FormatInt(int64(*ttl), 10)
	job.Spec.TTLSecondsAfterFinished = nil
}

// deliver hands res to onResult, if any, and to the fleet's Sink, and
// once the Result is recorded releases the Job. An error of either is
// returned, and the Job is kept.
func (w *Worker) deliver(ctx context.Context, c *clusterParts, job heldJob, res Result, onResult func(Result) error) error {
	if onResult != nil {
		if err := onResult(res); err != nil {
			w.log.WarnContext(ctx, "the Result was not recorded; the Job is kept", "run", res.RunID, "pid", res.PID.String(), "error", err)
			return fmt.Errorf("record the Result: %w", err)
		}
	}
	if w.fleet != nil && res.Outcome != jobwatch.TimedOut {
		// A replica fenced since the run ended delivers nothing: the
		// run's new owner does.
		if err := fenced(ctx, context.Cause(ctx)); errors.Is(err, ErrNotMember) {
			return err
		}
		if err := w.opts.Fleet.Sink.Record(ctx, res); err != nil {
			w.log.WarnContext(ctx, "the fleet's Sink did not record the Result; the Job is kept", "run", res.RunID, "pid", res.PID.String(), "error", err)
			return fmt.Errorf("record the Result (Options.Fleet.Sink): %w", err)
		}
	}
	w.release(ctx, c, job, res)
	return nil
}

// heldJob is what a run holds of its Job while it is followed: what
// follow and release read. The whole Job as the API server returned it
// (managed fields, the pod template) is kilobytes a run, and a Job from a
// list would hold the whole list.
type heldJob struct {
	namespace, name, runID string
	uid                    types.UID
	created                time.Time
	ttlAnnotation          string // AnnotationTTL's value
	hasTTLAnnotation       bool
	owner                  string // jobcreate.AnnotationOwner's value
	hasTTL                 bool   // spec.ttlSecondsAfterFinished is set
}

func hold(job *batchv1.Job) heldJob {
	h := heldJob{namespace: job.Namespace, name: job.Name, runID: job.Labels[manifest.LabelRunID],
		uid: job.UID, created: job.CreationTimestamp.Time, hasTTL: job.Spec.TTLSecondsAfterFinished != nil}
	h.ttlAnnotation, h.hasTTLAnnotation = job.Annotations[AnnotationTTL]
	h.owner = job.Annotations[jobcreate.AnnotationOwner]
	return h
}

// release gives a Job retained under Options.RetainUntilRecorded its TTL
// back, with a merge patch that also names the Job's UID, so a new Job of
// the same name is never changed. It does nothing for a Job without
// AnnotationTTL or that has a TTL, for a Job deleted, and for a run still
// going (TimedOut: its final Result is not known yet). A failure is
// logged, not returned: the Result stands, and the Job is kept until a
// later Attach or Sweep releases it (or deletes it, if its run is
// unknown by then). The patch is retried on a transient failure under
// Options.Retry, for up to its deadline (3 minutes by default) even when
// ctx has ended: the caller waits for it.
func (w *Worker) release(ctx context.Context, c *clusterParts, job heldJob, res Result) {
	if res.Outcome == jobwatch.Deleted || res.Outcome == jobwatch.Cancelled || res.Outcome == jobwatch.TimedOut {
		return
	}
	var ttl int64 = -1
	if v, ok := job.ttlAnnotation, job.hasTTLAnnotation; ok && !job.hasTTL {
		var err error
		if ttl, err = strconv.ParseInt(v, 10, 32); err != nil || ttl < 0 {
			w.log.WarnContext(ctx, "bad TTL annotation; the Job is kept", "pid", res.PID.String(), "annotation", AnnotationTTL, "value", v)
			return
		}
	}
	fleetJob := w.fleet != nil && job.owner != ""
	if ttl < 0 && !fleetJob {
		return
	}
	pt, patch := types.MergePatchType, fmt.Appendf(nil, `{"metadata":{"uid":%q},"spec":{"ttlSecondsAfterFinished":%d}}`, job.uid, ttl)
	if fleetJob {
		pt, patch = types.JSONPatchType, deliveredPatch(job, ttl)
	}
	jobs, err := c.jobs(job.namespace)
	if err == nil {
		// Not cut short by ctx, which may end with the run: bounded by
		// the retry policy's deadline instead.
		err = w.retry(ctx, "give the Job its TTL back", res.PID.String()).Do(context.WithoutCancel(ctx), func(ctx context.Context) error {
			_, err := jobs.Patch(ctx, job.name, pt, patch, metav1.PatchOptions{})
			return err
		})
	}
	switch {
	case err == nil:
		w.log.DebugContext(ctx, "released the Job", "run", res.RunID, "pid", res.PID.String(), "ttl_seconds", ttl, "delivered", fleetJob)
	case fleetJob && (apierrors.IsInvalid(err) || apierrors.IsConflict(err) || isUnprocessable(err)):
		// A test failed: another replica owns the Job now, or it was replaced.
		w.log.DebugContext(ctx, "the Job to release is not this replica's any more", "run", res.RunID, "pid", res.PID.String(), "error", err)
	case apierrors.IsNotFound(err), otherUID(err):
		// Gone, or another Job took the name: nothing of ours to release.
		w.log.DebugContext(ctx, "the Job to release is gone", "run", res.RunID, "pid", res.PID.String(), "error", err)
	default:
		w.log.WarnContext(ctx, "could not give the Job its TTL back; it is kept until a later Attach or Sweep (does the worker have the patch verb on jobs?)",
			"run", res.RunID, "pid", res.PID.String(), "error", err)
	}
}

// deliveredPatch is the JSON patch that marks a fleet's Job delivered
// (and gives it its TTL back, if ttl >= 0), only if it is still the same
// Job and still job.owner's: the API server applies all of it or none.
func deliveredPatch(job heldJob, ttl int64) []byte {
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	ann := "/metadata/annotations/"
	ops := []map[string]any{
		{"op": "test", "path": "/metadata/uid", "value": string(job.uid)},
		{"op": "test", "path": ann + esc.Replace(jobcreate.AnnotationOwner), "value": job.owner},
		{"op": "add", "path": ann + esc.Replace(AnnotationDelivered), "value": "true"},
	}
	if ttl >= 0 {
		ops = append(ops, map[string]any{"op": "add", "path": "/spec/ttlSecondsAfterFinished", "value": ttl})
	}
	data, _ := json.Marshal(ops)
	return data
}

// isUnprocessable reports whether err is a 422 without an Invalid
// reason: the API server's answer to a JSON patch whose test failed.
func isUnprocessable(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status) && status.Status().Code == 422
}

// otherUID reports whether err refuses a patch because it names another
// UID than the object's: the API server calls that an invalid change of
// the immutable metadata.uid.
func otherUID(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsInvalid(err) || !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// retry is Options.Retry, logging each retry of the request named what
// at Debug.
func (w *Worker) retry(ctx context.Context, what, pid string) retry.Policy {
	return w.opts.Retry.Notifying(func(err error, wait time.Duration) {
		w.log.DebugContext(ctx, "retrying a request", "request", what, "pid", pid, "wait", wait, "error", err)
	})
}

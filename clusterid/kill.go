package clusterid

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/retry"
)

// ErrNotFound is matched by the error of [Cluster.Kill] when the Job does
// not exist (any more). The error also wraps the API server's 404 status,
// so apierrors.IsNotFound sees it too. A caller that only wants the Job
// gone can treat it as success.
var ErrNotFound = errors.New("job not found")

// ErrWrongCluster is matched by a [*WrongClusterError].
var ErrWrongCluster = errors.New("PID belongs to another cluster")

// WrongClusterError is the error of [Cluster.Kill], and of a worker's
// Attach, given a PID of another cluster than the one its client talks
// to. Nothing was read or deleted: a Job of the same namespace and name in
// this cluster is another Job.
type WrongClusterError struct {
	// PID is the PID given.
	PID PID
	// Want is this cluster's UID.
	Want string
}

func (e *WrongClusterError) Error() string {
	return fmt.Sprintf("clusterid: PID %s belongs to cluster %q, but this client talks to cluster %q", e.PID, e.PID.ClusterUID, e.Want)
}

// Is reports whether target is ErrWrongCluster.
func (e *WrongClusterError) Is(target error) bool { return target == ErrWrongCluster }

// Kill deletes the Job that pid names, with foreground propagation: the
// API server keeps the Job, marked for deletion, until the garbage
// collector has deleted its pods, so they go with it. (The API's default
// for batch/v1 Jobs is to orphan the pods, which would keep running.) Kill
// returns once the API server has accepted the deletion, not once the Job
// and pods are gone.
//
// grace is sent as DeleteOptions.GracePeriodSeconds, rounded up to whole
// seconds; a negative grace sends none, leaving the default. Note what the
// API server does with it: a Job has no graceful deletion, so the value is
// checked but does not delay the Job, and the garbage collector deletes the
// pods with their own spec.terminationGracePeriodSeconds, not with this one.
//
// Kill first checks pid (an error matching [ErrInvalidPID]) and that its
// cluster UID is this cluster's (else a [*WrongClusterError], matching
// [ErrWrongCluster]); reading the UID may fail as [Cluster.UID] does. A
// Job that does not exist gives an error matching [ErrNotFound] that also
// wraps the API status; ask with errors.Is(err, ErrNotFound) rather than
// apierrors.IsNotFound, which also holds when kube-system cannot be found.
// Any other API error is wrapped as it is.
//
// Reading the UID and the delete are retried on what retry.Retriable calls
// transient (timeouts, 429, 5xx, dropped connections) under
// Options.Retry: back-off with jitter, or the server's Retry-After, for
// up to retry.DefaultDeadline by default and never past ctx. A delete
// retried after an attempt whose answer was lost, that then finds the Job
// gone, counts as done: nil, not ErrNotFound.
func (c *Cluster) Kill(ctx context.Context, pid PID, grace time.Duration) error {
	if err := pid.Validate(); err != nil {
		return err
	}
	uid, err := c.UID(ctx)
	if err != nil {
		return fmt.Errorf("clusterid: kill %s: %w", pid, err)
	}
	if pid.ClusterUID != uid {
		return &WrongClusterError{PID: pid, Want: uid}
	}
	if c.client == nil {
		return fmt.Errorf("clusterid: kill %s: no client", pid)
	}
	mayHaveDeleted := false
	p := c.opts.Retry.Notifying(func(err error, wait time.Duration) {
		c.log.DebugContext(ctx, "retrying the delete of a job", "pid", pid.String(), "wait", wait, "error", err)
	})
	err = p.Do(ctx, func(ctx context.Context) error {
		err := c.client.BatchV1().Jobs(pid.Namespace).Delete(ctx, pid.Name, deleteOptions(grace))
		if err != nil && !apierrors.IsNotFound(err) && retry.MayHaveApplied(err) {
			mayHaveDeleted = true
		}
		return err
	})
	switch {
	case apierrors.IsNotFound(err) && mayHaveDeleted:
		c.log.DebugContext(ctx, "deleted job (an earlier attempt's answer was lost)", "pid", pid.String(), "grace", grace)
		return nil
	case apierrors.IsNotFound(err):
		return fmt.Errorf("clusterid: kill %s: %w: %w", pid, ErrNotFound, err)
	case err != nil:
		return fmt.Errorf("clusterid: kill %s: delete job: %w", pid, err)
	}
	c.log.DebugContext(ctx, "deleted job", "pid", pid.String(), "grace", grace)
	return nil
}

// deleteOptions returns the options of Kill's delete call.
func deleteOptions(grace time.Duration) metav1.DeleteOptions {
	opts := metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}
	if grace >= 0 {
		secs := int64(grace / time.Second)
		if grace%time.Second != 0 {
			secs++
		}
		opts.GracePeriodSeconds = &secs
	}
	return opts
}

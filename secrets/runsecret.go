package secrets

import (
	"context"
	"fmt"
	"sync"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	clientretry "k8s.io/client-go/util/retry"
)

// RunSecret is the env Secret of one run, made by [Manager.PrepareRun].
// After the Job is created, [RunSecret.Adopt] makes the Job its owner, so
// that the garbage collector deletes it with the Job; if the Job is never
// created, [RunSecret.Discard] deletes it. Until one of them succeeds, the
// Manager tracks it and [Manager.Close] deletes it. Its methods are safe
// for concurrent use.
type RunSecret struct {
	m     *Manager // nil when there is no Secret
	ref   Ref
	runID string
	uid   types.UID // the UID of the Secret as upserted

	mu    sync.Mutex // guards state
	state runState
}

type runState int

const (
	statePending runState = iota
	stateAdopted
	stateDiscarded
)

// Name returns the Secret's name, or "" if PrepareRun moved nothing.
func (r *RunSecret) Name() string { return r.ref.Name }

// Namespace returns the Secret's namespace, or "" if PrepareRun moved
// nothing.
func (r *RunSecret) Namespace() string { return r.ref.Namespace }

// Adopt makes job, as the API server returned it on creation (it needs
// its name and UID), the owner of the Secret: it adds the ownerReference
// {apiVersion: batch/v1, kind: Job, name, uid} with controller and
// blockOwnerDeletion false (true would need update rights on
// jobs/finalizers, and the Job need not wait for its Secret). Deleting the
// Job with background or foreground propagation then deletes the Secret;
// orphan propagation, the API default for Jobs, leaves it.
//
// The write is retried on conflict with a fresh read, and a
// transient failure of any request (timeouts, 429, 5xx, dropped
// connections; see retry.Retriable) is retried under Options.Retry, for
// up to its deadline (3 minutes by default) and never past ctx; a 4xx
// such as Forbidden fails at once. Calling Adopt again,
// or for a Secret that already names the Job, changes nothing. Once Adopt
// has succeeded, Discard and Manager.Close leave the Secret alone. If
// Adopt fails, the Secret is still tracked and the Job may be running with
// it: retry Adopt, or delete the Job and Discard.
func (r *RunSecret) Adopt(ctx context.Context, job *batchv1.Job) error {
	if r.m == nil {
		return nil
	}
	if job == nil || job.Name == "" || job.UID == "" {
		return fmt.Errorf("secrets: adopt %s: need the created Job, with its name and UID", r.ref)
	}
	if job.Namespace != r.ref.Namespace {
		return fmt.Errorf("secrets: adopt %s: the job is in namespace %q; an owner must be in the Secret's", r.ref, job.Namespace)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case stateAdopted:
		return nil
	case stateDiscarded:
		return fmt.Errorf("secrets: adopt %s: the Secret was discarded", r.ref)
	}
	owner := metav1.OwnerReference{
		APIVersion:         batchv1.SchemeGroupVersion.String(),
		Kind:               "Job",
		Name:               job.Name,
		UID:                job.UID,
		Controller:         new(false),
		BlockOwnerDeletion: new(false),
	}
	api := r.m.client.CoreV1().Secrets(r.ref.Namespace)
	err := r.m.retry(ctx, "adopt", r.ref).Do(ctx, func(ctx context.Context) error {
		return clientretry.RetryOnConflict(r.m.opts.Backoff, func() error { return r.addOwner(ctx, api, owner) })
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("secrets: adopt %s: the Secret is gone, so the Job's pods cannot start: %w", r.ref, err)
		}
		return fmt.Errorf("secrets: adopt %s: %w", r.ref, err)
	}
	r.state = stateAdopted
	r.m.untrack(r.ref, r)
	r.m.log.DebugContext(ctx, "secret owned by its job", "secret", r.ref.String(), "job", job.Name)
	return nil
}

// Discard deletes the Secret unless Adopt has succeeded; then, and after
// an earlier Discard, it does nothing. A Secret already gone counts as
// deleted. Call it when the Job could not be created, or defer it right
// after PrepareRun. The delete's transient failure of any request (timeouts, 429, 5xx, dropped
// connections; see retry.Retriable) is retried under Options.Retry, for
// up to its deadline (3 minutes by default) and never past ctx; a 4xx
// such as Forbidden fails at once.
func (r *RunSecret) Discard(ctx context.Context) error {
	if r.m == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != statePending {
		return nil
	}
	if err := r.m.delete(ctx, r.ref, r.uid); err != nil {
		return err
	}
	r.state = stateDiscarded
	r.m.untrack(r.ref, r)
	return nil
}

// untrack forgets r, if r is still the RunSecret tracked under ref.
func (m *Manager) untrack(ref Ref, r *RunSecret) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.runs[ref] == r {
		delete(m.runs, ref)
	}
}

// addOwner adds owner to the Secret's ownerReferences, unless there; one
// try of Adopt's read-then-update.
func (r *RunSecret) addOwner(ctx context.Context, api typedcorev1.SecretInterface, owner metav1.OwnerReference) error {
	cur, err := api.Get(ctx, r.ref.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if err := checkRun(cur, r.runID); err != nil {
		return err
	}
	for _, o := range cur.OwnerReferences {
		if o.UID == owner.UID {
			return nil
		}
	}
	cur.OwnerReferences = append(cur.OwnerReferences, owner)
	_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

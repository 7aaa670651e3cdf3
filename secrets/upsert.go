package secrets

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientretry "k8s.io/client-go/util/retry"

	"github.com/kubeworker/kubeworker/retry"
)

// delete deletes the Secret r if its UID is still uid. Not found, or a
// Secret of that name with another UID, is not an error. A transient
// failure is retried under Options.Retry.
func (m *Manager) delete(ctx context.Context, r Ref, uid types.UID) error {
	opts := metav1.DeleteOptions{}
	if uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	err := m.retry(ctx, "delete", r).Do(ctx, func(ctx context.Context) error {
		return m.client.CoreV1().Secrets(r.Namespace).Delete(ctx, r.Name, opts)
	})
	switch {
	case err == nil:
		m.log.DebugContext(ctx, "deleted secret", "secret", r.String())
		return nil
	case apierrors.IsNotFound(err):
		m.log.DebugContext(ctx, "secret already gone", "secret", r.String())
		return nil
	case apierrors.IsConflict(err):
		m.log.DebugContext(ctx, "secret replaced by another of the same name; left alone", "secret", r.String())
		return nil
	default:
		return fmt.Errorf("secrets: delete secret %s: %w", r, err)
	}
}

// upsert makes the Secret r hold exactly data: it reads the Secret; if
// found, it replaces its data (if different) and adds labels; if not, it
// creates it. It runs in client-go's retry.RetryOnConflict, which reads
// afresh on every try; a create that finds the Secret already made by
// someone else updates that one instead. A transient failure of any
// request starts the whole read-then-write again, under Options.Retry. check, if not nil, vets an existing Secret
// before it is changed. It returns the Secret as stored and whether this
// call created it. On error, created says whether a create may have been
// stored even so (the request failed in a way that leaves it unknown), so
// that the caller tracks the Secret for cleanup.
func (m *Manager) upsert(ctx context.Context, r Ref, labels map[string]string, data map[string][]byte, check func(*corev1.Secret) error) (*corev1.Secret, bool, error) {
	api := m.client.CoreV1().Secrets(r.Namespace)
	var stored *corev1.Secret
	created := false
	// ambiguous is set once a create failed in a way that may have stored
	// the Secret: a later attempt that finds it cannot tell it from one
	// made by someone else, so it counts as created, and is tracked.
	ambiguous := false
	err := m.retry(ctx, "upsert", r).Do(ctx, func(ctx context.Context) error {
		return clientretry.RetryOnConflict(m.opts.Backoff, func() error {
			created = false
			cur, err := api.Get(ctx, r.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				fresh := &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace, Labels: labels},
					Type:       corev1.SecretTypeOpaque,
					Data:       data,
				}
				stored, err = api.Create(ctx, fresh, metav1.CreateOptions{})
				if err == nil {
					created = true
					return nil
				}
				if !apierrors.IsAlreadyExists(err) {
					ambiguous = ambiguous || retry.MayHaveApplied(err)
					return err
				}
				// Someone else created it between our read and create.
				cur, err = api.Get(ctx, r.Name, metav1.GetOptions{})
			}
			if err != nil {
				return err
			}
			if check != nil {
				if err := check(cur); err != nil {
					return err
				}
			}
			if equalData(cur.Data, data) && len(cur.StringData) == 0 && hasLabels(cur.Labels, labels) {
				stored = cur
				return nil
			}
			cur.Data, cur.StringData = data, nil
			if cur.Labels == nil {
				cur.Labels = map[string]string{}
			}
			for k, v := range labels {
				cur.Labels[k] = v
			}
			stored, err = api.Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
	})
	created = created || ambiguous
	if err != nil {
		return nil, created, fmt.Errorf("secrets: upsert secret %s: %w", r, err)
	}
	if created {
		m.log.DebugContext(ctx, "created secret", "secret", r.String())
	} else {
		m.log.DebugContext(ctx, "updated secret", "secret", r.String())
	}
	return stored, created, nil
}

// retry is Options.Retry, logging each retry of the request named what
// on Secret r (never its data).
func (m *Manager) retry(ctx context.Context, what string, r Ref) retry.Policy {
	return m.opts.Retry.Notifying(func(err error, wait time.Duration) {
		m.log.DebugContext(ctx, "retrying a secret request", "request", what, "secret", r.String(), "wait", wait, "error", err)
	})
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

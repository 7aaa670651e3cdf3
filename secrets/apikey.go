package secrets

import (
	"context"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubeworker/kubeworker/manifest"
)

const (
	// DefaultAPIKeyEnv is the env entry that holds the API key, unless
	// Options.APIKeyEnv names another.
	DefaultAPIKeyEnv = "KUBEWORKER_API_KEY"
	// DataKey is the key of the API-key Secret's one data entry.
	DataKey = "value"
)

// APIKeySecretName returns the name of the API-key Secret of the worker
// named workerName: "kubeworker-<slug>-api-key", the slug made by
// manifest.SlugifyName (Prefect names it "prefect-<slug>-api-key"). A name
// with no ASCII letter or digit gives an error wrapping manifest.ErrNoSlug.
func APIKeySecretName(workerName string) (string, error) {
	slug, err := manifest.SlugifyName(workerName)
	if err != nil {
		return "", fmt.Errorf("secrets: name the API-key Secret of worker %q: %w", workerName, err)
	}
	return "kubeworker-" + slug + "-api-key", nil
}

// UpsertAPIKey makes the worker's API-key Secret in namespace hold apiKey
// under DataKey, and returns its name. It reads the Secret; if it exists,
// its data is replaced (unless already equal); if not, it is created,
// labelled app.kubernetes.io/managed-by=kubeworker, and tracked for
// [Manager.Close]; so is one whose create failed in a way that leaves
// unknown whether it was stored (a 5xx or a broken connection), and one
// that a retry then found. A write that conflicts with another is
// retried with a fresh read (client-go's retry.RetryOnConflict); a
// transient failure of any request (timeouts, 429, 5xx, dropped
// connections; see retry.Retriable) is retried under Options.Retry, for
// up to its deadline (3 minutes by default) and never past ctx; a 4xx
// such as Forbidden fails at once. It needs Options.WorkerName.
func (m *Manager) UpsertAPIKey(ctx context.Context, namespace, apiKey string) (Ref, error) {
	name, err := APIKeySecretName(m.opts.WorkerName)
	if err != nil {
		return Ref{}, err
	}
	if namespace == "" {
		return Ref{}, errors.New("secrets: upsert the API-key Secret: no namespace")
	}
	if err := m.checkOpen(); err != nil {
		return Ref{}, err
	}
	r := Ref{Namespace: namespace, Name: name}
	labels := map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}
	stored, created, err := m.upsert(ctx, r, labels, map[string][]byte{DataKey: []byte(apiKey)}, nil)
	if !created {
		if err != nil {
			return Ref{}, err
		}
		return r, nil
	}
	var uid types.UID // unknown if the create may or may not have been stored
	if err == nil {
		uid = stored.UID
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.created[r] = uid
	}
	m.mu.Unlock()
	if closed {
		return Ref{}, errors.Join(err, ErrClosed, m.delete(ctx, r, uid))
	}
	if err != nil {
		return Ref{}, err
	}
	return r, nil
}

// ReplaceAPIKey moves the API key of job's run container (its env entry
// Options.APIKeyEnv) out of the Job spec, as Prefect's worker does when it
// stores the API key in a Secret. It reports whether it changed job.
//
// With Options.APIKeySecret set, it only points the entry at that Secret
// ([SetSecretKeyRef]), adding the entry if there is none, and writes
// nothing to the cluster. Otherwise, if the entry has a plain, non-empty
// value, it upserts the worker's Secret with that value in the Job's
// namespace ([Manager.UpsertAPIKey]) and replaces the entry with
// valueFrom.secretKeyRef {name, key: "value"}; an entry that is absent,
// empty or already a reference is left as it is.
//
// job is the prepared Job (see manifest.Config.Prepare); its namespace
// must be set. If the upsert fails, job is unchanged. The upsert retries
// as UpsertAPIKey's does.
func (m *Manager) ReplaceAPIKey(ctx context.Context, job *batchv1.Job) (bool, error) {
	c, err := runContainer(job, m.opts.Container)
	if err != nil {
		return false, err
	}
	if m.opts.APIKeySecret.Name != "" {
		if err := SetSecretKeyRef(job, m.opts.Container, m.opts.APIKeyEnv, m.opts.APIKeySecret); err != nil {
			return false, err
		}
		return true, nil
	}
	i := envIndex(c.Env, m.opts.APIKeyEnv)
	if i < 0 || c.Env[i].ValueFrom != nil || c.Env[i].Value == "" {
		return false, nil
	}
	r, err := m.UpsertAPIKey(ctx, job.Namespace, c.Env[i].Value)
	if err != nil {
		return false, err
	}
	c.Env[i] = secretEnv(m.opts.APIKeyEnv, KeyRef{Name: r.Name, Key: DataKey})
	return true, nil
}

// SetSecretKeyRef sets the env entry named env of job's run container
// (named container, or the first if "") to valueFrom.secretKeyRef ref,
// replacing every entry of that name, or appending one if there is none.
// An empty ref.Key means DataKey. It writes nothing to the cluster.
func SetSecretKeyRef(job *batchv1.Job, container, env string, ref KeyRef) error {
	if ref.Name == "" || env == "" {
		return errors.New("secrets: set a secretKeyRef: need the env entry's name and the Secret's")
	}
	if ref.Key == "" {
		ref.Key = DataKey
	}
	c, err := runContainer(job, container)
	if err != nil {
		return err
	}
	entry := secretEnv(env, ref)
	found := false
	kept := c.Env[:0]
	for _, e := range c.Env {
		if e.Name != env {
			kept = append(kept, e)
		} else if !found {
			found = true
			kept = append(kept, entry)
		}
	}
	if !found {
		kept = append(kept, entry)
	}
	c.Env = kept
	return nil
}

func secretEnv(name string, ref KeyRef) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ref.Name}, Key: ref.Key},
	}}
}

func envIndex(env []corev1.EnvVar, name string) int {
	for i, e := range env {
		if e.Name == name {
			return i
		}
	}
	return -1
}

// runContainer returns the container named name of job's pod, or its first
// if name is "".
func runContainer(job *batchv1.Job, name string) (*corev1.Container, error) {
	if job == nil {
		return nil, errors.New("secrets: no job")
	}
	cs := job.Spec.Template.Spec.Containers
	if len(cs) == 0 {
		return nil, errors.New("secrets: the job's pod has no containers")
	}
	if name == "" {
		return &cs[0], nil
	}
	names := make([]string, len(cs))
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i], nil
		}
		names[i] = cs[i].Name
	}
	return nil, fmt.Errorf("secrets: the job's pod has no container %q, only %s", name, strings.Join(names, ", "))
}

func (m *Manager) checkOpen() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	return nil
}

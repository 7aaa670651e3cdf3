package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kubeworker/kubeworker/manifest"
)

// ErrForeignSecret is matched by the error of [Manager.PrepareRun] when a
// Secret of the run's Secret name exists but was not made for this run
// (its run-ID or managed-by label differs). It is left unchanged.
var ErrForeignSecret = errors.New("a Secret of that name belongs to something else")

// RunSecretName returns the name of the per-run env Secret of the run
// whose ID is runID: "kubeworker-run-<id>-env" when the ID is its own
// slug (a lowercase DNS label of at most 45 characters, such as a UUID);
// otherwise "kubeworker-run-<slug>.<hash>-env", where the slug is
// manifest.SlugifyName's and the hash is 10 hex digits of the ID's
// SHA-256, so that IDs with the same slug ("Run_1", "run-1") get different
// Secrets; the dot, which no slug holds, keeps the two forms apart. The
// same ID always gives the same name, so a retry finds the Secret of an
// earlier try. An ID with no ASCII letter or digit is an error.
func RunSecretName(runID string) (string, error) {
	slug, err := manifest.SlugifyName(runID)
	if err != nil {
		return "", fmt.Errorf("secrets: name the Secret of run %q: %w", runID, err)
	}
	if slug != runID {
		sum := sha256.Sum256([]byte(runID))
		slug += "." + hex.EncodeToString(sum[:5])
	}
	name := "kubeworker-run-" + slug + "-env"
	if msgs := content.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return "", fmt.Errorf("secrets: name the Secret of run %q: %q: %s", runID, name, strings.Join(msgs, "; "))
	}
	return name, nil
}

// PrepareRun moves every plain env value of job's run container (entries
// with value, not valueFrom) into a Secret of the run and makes the
// container read it through envFrom, so that no value is left in the Job
// spec. Call it on the prepared Job (manifest.Config.Prepare), after
// [Manager.ReplaceAPIKey] if both are used, and before creating the Job:
//
//	rs, err := m.PrepareRun(ctx, job)
//	if err != nil {
//		return err
//	}
//	defer rs.Discard(ctx) // does nothing once Adopt has succeeded
//	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
//	if err != nil {
//		return err
//	}
//	return rs.Adopt(ctx, created)
//
// The Secret is named by [RunSecretName] from the Job's run-ID label
// (manifest.LabelRunID), labelled with that and with managed-by, and
// upserted in the Job's namespace as [Manager.UpsertAPIKey] is, so a retry
// for the same run updates it; one that exists but was not made for this
// run is refused ([ErrForeignSecret]). Then the moved entries are removed
// from the container's env and envFrom gets {secretRef: {name}} appended,
// after any envFrom it had, so the run's own values still win over those.
// If anything fails before that, job is unchanged; if the create failed
// so that the Secret may exist all the same (a 5xx or a broken
// connection), the Manager tracks it, and Manager.Close deletes it. The
// upsert retries as UpsertAPIKey's does: a transient failure of any request (timeouts, 429, 5xx, dropped
// connections; see retry.Retriable) is retried under Options.Retry, for
// up to its deadline (3 minutes by default) and never past ctx; a 4xx
// such as Forbidden fails at once.
//
// What the run sees stays the same, with two rules. Only plain values
// move; valueFrom entries stay. A value with "$(" or "$$" is an error
// matching [ErrInvalidEnv] unless Options.KeepExpansionsInline is set: the
// kubelet expands $(VAR) references and unescapes "$$" in inline values
// only, so moved, "$(HOME)/bin" would reach the run as written. Kept
// inline, such an entry now also sees variables that were declared after
// it. So is a name that cannot be a key of a Secret read by envFrom, and a
// name given twice (an inline entry would then always win, whatever the
// order). Every bad entry is named in one error, by path and name.
//
// With no plain value to move, PrepareRun changes nothing and returns a
// RunSecret with an empty Name whose methods do nothing.
func (m *Manager) PrepareRun(ctx context.Context, job *batchv1.Job) (*RunSecret, error) {
	c, err := runContainer(job, m.opts.Container)
	if err != nil {
		return nil, err
	}
	path := field.NewPath("spec", "template", "spec", "containers").Index(containerIndex(job, c)).Child("env")
	data, kept, moved, err := splitEnv(c.Env, m.opts.KeepExpansionsInline, path)
	if err != nil {
		return nil, err
	}
	if len(moved) == 0 {
		return &RunSecret{}, nil
	}
	runID := job.Labels[manifest.LabelRunID]
	if runID == "" {
		return nil, fmt.Errorf("secrets: the job has no %s label to name the run's Secret by", manifest.LabelRunID)
	}
	if job.Namespace == "" {
		return nil, errors.New("secrets: the job has no namespace for the run's Secret")
	}
	name, err := RunSecretName(runID)
	if err != nil {
		return nil, err
	}
	if err := m.checkOpen(); err != nil {
		return nil, err
	}
	r := Ref{Namespace: job.Namespace, Name: name}
	labels := map[string]string{manifest.LabelRunID: runID, manifest.LabelManagedBy: manifest.ManagedBy}
	stored, created, err := m.upsert(ctx, r, labels, data, func(s *corev1.Secret) error { return checkRun(s, runID) })
	if err != nil && !created {
		return nil, err
	}
	rs := &RunSecret{m: m, ref: r, runID: runID}
	if err == nil {
		rs.uid = stored.UID
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.runs[r] = rs
	}
	m.mu.Unlock()
	if closed {
		return nil, errors.Join(err, ErrClosed, m.delete(ctx, r, rs.uid))
	}
	if err != nil {
		// The Secret may exist: Close deletes it unless a retry of
		// PrepareRun for this run takes it over.
		return nil, err
	}
	c.Env = kept
	c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: name},
	}})
	m.log.DebugContext(ctx, "moved env into secret", "secret", r.String(), "names", moved)
	return rs, nil
}

func containerIndex(job *batchv1.Job, c *corev1.Container) int {
	for i := range job.Spec.Template.Spec.Containers {
		if &job.Spec.Template.Spec.Containers[i] == c {
			return i
		}
	}
	return 0
}

// checkRun returns an error wrapping ErrForeignSecret unless s was made
// for the run runID.
func checkRun(s *corev1.Secret, runID string) error {
	if s.Labels[manifest.LabelRunID] != runID || s.Labels[manifest.LabelManagedBy] != manifest.ManagedBy {
		return fmt.Errorf("%w (labels %s=%q, %s=%q; want run %q)", ErrForeignSecret,
			manifest.LabelRunID, s.Labels[manifest.LabelRunID], manifest.LabelManagedBy, s.Labels[manifest.LabelManagedBy], runID)
	}
	return nil
}

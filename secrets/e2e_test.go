package secrets_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

// The end-to-end tests run against the real control plane of TestMain.

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(needCluster(t).Config())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// preparedJob renders the default template into ns and prepares it for a
// new run with env.
func preparedJob(t *testing.T, ns string, env map[string]string) *batchv1.Job {
	t.Helper()
	cfg, err := manifest.Default().Render(map[string]any{"namespace": ns}, manifest.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cfg.Prepare(manifest.Run{ID: "run-" + rand.String(8), Name: t.Name(), Env: env}, manifest.PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// eventually polls cond every 100ms for up to bound.
func eventually(t *testing.T, bound time.Duration, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, bound, true, cond); err != nil {
		t.Fatalf("wait for %s: %v", what, err)
	}
}

func secretIsGone(client kubernetes.Interface, ns, name string) wait.ConditionWithContextFunc {
	return func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

func TestE2EUpsertAPIKeyCreatesThenReplacesAndCloseDeletes(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	ctx := t.Context()
	m := secrets.New(client, secrets.Options{WorkerName: "E2E Worker"})
	name := "kubeworker-e2e-worker-api-key"

	ref, err := m.UpsertAPIKey(ctx, ns, "first-key")
	if err != nil {
		t.Fatal(err)
	}
	first, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref.Name != name || string(first.Data["value"]) != "first-key" || first.Labels[manifest.LabelManagedBy] != manifest.ManagedBy {
		t.Fatalf("after create: ref %v, labels %v", ref, first.Labels)
	}
	if _, err := m.UpsertAPIKey(ctx, ns, "second-key"); err != nil {
		t.Fatal(err)
	}
	second, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(second.Data["value"]) != "second-key" || len(second.Data) != 1 {
		t.Fatalf("after update: data keys %v, want value replaced", keys(second.Data))
	}
	if second.UID != first.UID || second.ResourceVersion == first.ResourceVersion {
		t.Fatalf("want the same Secret updated: UID %s→%s, resourceVersion %s→%s", first.UID, second.UID, first.ResourceVersion, second.ResourceVersion)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after Close: %v, want NotFound", err)
	}
}

func TestE2ECloseLeavesASecretRecreatedByAnother(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	ctx := t.Context()
	m := secrets.New(client, secrets.Options{WorkerName: "e2e"})
	ref, err := m.UpsertAPIKey(ctx, ns, "ours")
	if err != nil {
		t.Fatal(err)
	}
	if err := client.CoreV1().Secrets(ns).Delete(ctx, ref.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: ref.Name}, StringData: map[string]string{"value": "theirs"}}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{}); err != nil {
		t.Fatalf("Close deleted a Secret it did not create: %v", err)
	}
}

// TestE2EOrphanDeletionLeavesTheRunSecret shows why Adopt's doc warns
// about orphan propagation, the API default for Jobs: the garbage
// collector keeps the Secret and only removes its ownerReference.
func TestE2EOrphanDeletionLeavesTheRunSecret(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	ctx := t.Context()
	job := preparedJob(t, ns, map[string]string{"TOKEN": "t0k3n"})
	m := secrets.New(client, secrets.Options{})
	rs, err := m.PrepareRun(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	created, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(errorsJoin(err, rs.Discard(ctx)))
	}
	if err := rs.Adopt(ctx, created); err != nil {
		t.Fatal(err)
	}
	orphan := metav1.DeletePropagationOrphan
	if err := client.BatchV1().Jobs(ns).Delete(ctx, created.Name, metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the garbage collector to orphan the run Secret", func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Secrets(ns).Get(ctx, rs.Name(), metav1.GetOptions{})
		return err == nil && len(s.OwnerReferences) == 0, err
	})
}

// TestE2ERunSecretGoesWithItsJob creates a run's Secret and its Job, lets
// the Job adopt it and deletes the Job: the garbage collector must delete
// the Secret, with either propagation that deletes dependents.
func TestE2ERunSecretGoesWithItsJob(t *testing.T) {
	for _, policy := range []metav1.DeletionPropagation{metav1.DeletePropagationBackground, metav1.DeletePropagationForeground} {
		t.Run(string(policy), func(t *testing.T) {
			client := adminClient(t)
			ns := cluster.NewNamespace(t)
			ctx := t.Context()
			values := map[string]string{"DB_PASSWORD": "hunter2-" + rand.String(6), "KUBEWORKER_API_KEY": "key-" + rand.String(6)}
			job := preparedJob(t, ns, values)
			m := secrets.New(client, secrets.Options{WorkerName: "e2e"})
			if _, err := m.ReplaceAPIKey(ctx, job); err != nil {
				t.Fatal(err)
			}
			rs, err := m.PrepareRun(ctx, job)
			if err != nil {
				t.Fatal(err)
			}
			created, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(errorsJoin(err, rs.Discard(ctx)))
			}
			if err := rs.Adopt(ctx, created); err != nil {
				t.Fatal(err)
			}

			stored, err := client.BatchV1().Jobs(ns).Get(ctx, created.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			spec, _ := json.Marshal(stored)
			for name, v := range values {
				if strings.Contains(string(spec), v) {
					t.Errorf("the Job as stored holds the value of %s", name)
				}
			}
			s, err := client.CoreV1().Secrets(ns).Get(ctx, rs.Name(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if string(s.Data["DB_PASSWORD"]) != values["DB_PASSWORD"] {
				t.Errorf("the run Secret lacks DB_PASSWORD")
			}
			if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != created.UID {
				t.Fatalf("ownerReferences = %v, want the Job %s", s.OwnerReferences, created.UID)
			}

			if err := client.BatchV1().Jobs(ns).Delete(ctx, created.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 2*time.Minute, "the garbage collector to delete the run Secret", secretIsGone(client, ns, rs.Name()))

			// Close still deletes the API-key Secret it created.
			if err := m.Close(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "the API-key Secret to go", secretIsGone(client, ns, "kubeworker-e2e-api-key"))
		})
	}
}

func TestE2EDiscardDeletesTheRunSecret(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	ctx := t.Context()
	job := preparedJob(t, ns, map[string]string{"TOKEN": "t0k3n"})
	m := secrets.New(client, secrets.Options{})
	rs, err := m.PrepareRun(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, rs.Name(), metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// Job creation fails: restartPolicy Always is invalid for a Job.
	job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyAlways
	if _, err := client.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("creating an invalid Job: %v, want Invalid", err)
	}
	if err := rs.Discard(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, rs.Name(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after Discard: %v, want NotFound", err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestE2ECloseDeletesARunSecretNeverAdopted(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	ctx := t.Context()
	m := secrets.New(client, secrets.Options{})
	rs, err := m.PrepareRun(ctx, preparedJob(t, ns, map[string]string{"TOKEN": "t0k3n"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets(ns).Get(ctx, rs.Name(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after Close: %v, want NotFound", err)
	}
}

package secrets_test

import (
	"errors"
	"net"
	"syscall"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

// Every request a run's Secrets need (the API-key upsert, the run
// Secret's upsert, its adoption by the Job, its discard, Close's deletes)
// rides out transient failures of each verb.
func TestSecretRequestsRideOutTransientFailures(t *testing.T) {
	faults := map[string]error{
		"429 without Retry-After": apierrors.NewTooManyRequests("slow down", 0),
		"429 with Retry-After":    apierrors.NewTooManyRequests("slow down", 1),
		"500":                     apierrors.NewInternalError(errors.New("etcd leader changed")),
		"503":                     apierrors.NewServiceUnavailable("restarting"),
		"timeout":                 apierrors.NewTimeoutError("request did not complete within 1m0s", 0),
		"reset":                   &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
	}
	for name, fault := range faults {
		for _, verb := range []string{"get", "create", "update", "delete"} {
			t.Run(name+" on "+verb, func(t *testing.T) {
				client := fake.NewClientset(secret(keySecret, nil, map[string]string{"value": "old"}))
				failed := failTimes(client, verb, 2, fault)
				m := secrets.New(client, secrets.Options{WorkerName: "etl-worker", Retry: fast})
				if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); err != nil {
					t.Fatalf("UpsertAPIKey: %v", err)
				}
				job := testJob([]corev1.EnvVar{plain("A", "value-one")})
				rs, err := m.PrepareRun(t.Context(), job)
				if err != nil {
					t.Fatalf("PrepareRun: %v", err)
				}
				owner := &batchv1.Job{}
				owner.Namespace, owner.Name, owner.UID = testNS, "etl-x", "job-uid"
				if err := rs.Adopt(t.Context(), owner); err != nil {
					t.Fatalf("Adopt: %v", err)
				}
				other, err := m.PrepareRun(t.Context(), testJobOfRun("another-run"))
				if err != nil {
					t.Fatalf("PrepareRun of another run: %v", err)
				}
				if err := other.Discard(t.Context()); err != nil {
					t.Fatalf("Discard: %v", err)
				}
				if err := m.Close(t.Context()); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if failed.Load() != 2 {
					t.Errorf("%d %ss failed, want the 2 injected", failed.Load(), verb)
				}
				if s := getSecret(t, client, keySecret); string(s.Data["value"]) != apiKey {
					t.Errorf("the API-key Secret holds %q", s.Data["value"])
				}
				if s := getSecret(t, client, runSecret); len(s.OwnerReferences) != 1 {
					t.Errorf("the run Secret has owners %v, want the Job", s.OwnerReferences)
				}
			})
		}
	}
}

func TestAForbiddenSecretRequestFailsAtOnce(t *testing.T) {
	client := fake.NewClientset()
	failed := failTimes(client, "get", 100, apierrors.NewForbidden(secretsGR, keySecret, errors.New("no")))
	m := secrets.New(client, secrets.Options{WorkerName: "etl-worker", Retry: fast})
	if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); !apierrors.IsForbidden(err) || failed.Load() != 1 {
		t.Fatalf("UpsertAPIKey = %v after %d reads, want Forbidden after 1", err, failed.Load())
	}
}

// testJobOfRun is testJob for another run ID.
func testJobOfRun(runID string) *batchv1.Job {
	job := testJob([]corev1.EnvVar{plain("B", "value-two")})
	job.Labels = map[string]string{manifest.LabelRunID: runID, manifest.LabelManagedBy: manifest.ManagedBy}
	return job
}

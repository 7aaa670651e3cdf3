package secrets_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

func TestCloseDeletesWhatTheManagerCreatedAndStillTracks(t *testing.T) {
	client := fake.NewClientset(secret("kubeworker-etl-worker-api-key", nil, map[string]string{"value": "old"}))
	m := secrets.New(client, secrets.Options{WorkerName: "etl-worker"})
	ctx := t.Context()
	// Created in another namespace: Close deletes it.
	if _, err := m.UpsertAPIKey(ctx, "team-b", apiKey); err != nil {
		t.Fatal(err)
	}
	// Only updated: Close leaves it.
	if _, err := m.UpsertAPIKey(ctx, testNS, apiKey); err != nil {
		t.Fatal(err)
	}
	// Never adopted: Close deletes it.
	prepared(t, client, m)
	want := []secrets.Ref{{Namespace: "team-a", Name: runSecret}, {Namespace: "team-b", Name: keySecret}}
	if got := m.Tracked(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Tracked = %v, want %v", got, want)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Secrets("team-b").Get(ctx, keySecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("created API-key Secret: %v, want deleted", err)
	}
	if secretGone(t, client, keySecret) {
		t.Errorf("Close deleted the API-key Secret it had only updated")
	}
	if !secretGone(t, client, runSecret) {
		t.Errorf("Close left a run Secret that was never adopted")
	}
	if err := m.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseJoinsErrorsAndTriesAgainNextTime(t *testing.T) {
	client := fake.NewClientset()
	// Retries off, so that the 503s fail the deletes (by default they are
	// retried: see TestSecretRequestsRideOutTransientFailures).
	m := secrets.New(client, secrets.Options{WorkerName: "etl-worker", Retry: noRetry})
	ctx := t.Context()
	for _, ns := range []string{"ns-1", "ns-2", "ns-3"} {
		if _, err := m.UpsertAPIKey(ctx, ns, apiKey); err != nil {
			t.Fatal(err)
		}
	}
	failTimes(client, "delete", 2, apierrors.NewServiceUnavailable("etcd down"))
	err := m.Close(ctx)
	if !apierrors.IsServiceUnavailable(err) || strings.Count(err.Error(), "etcd down") != 2 {
		t.Fatalf("Close = %v; want both failures joined", err)
	}
	if n := len(m.Tracked()); n != 2 {
		t.Fatalf("%d Secrets still tracked, want the 2 that failed", n)
	}
	if err := m.Close(ctx); err != nil || len(m.Tracked()) != 0 {
		t.Fatalf("second Close = %v, tracked %v", err, m.Tracked())
	}
}

func TestManagerCreatesNothingAfterClose(t *testing.T) {
	client := fake.NewClientset()
	m := secrets.New(client, secrets.Options{WorkerName: "etl-worker"})
	if err := m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); !errors.Is(err, secrets.ErrClosed) {
		t.Errorf("UpsertAPIKey after Close: %v, want ErrClosed", err)
	}
	if _, err := m.PrepareRun(t.Context(), testJob([]corev1.EnvVar{plain("A", "1")})); !errors.Is(err, secrets.ErrClosed) {
		t.Errorf("PrepareRun after Close: %v, want ErrClosed", err)
	}
	if n := count(client, "create"); n != 0 {
		t.Errorf("%d creates after Close", n)
	}
}

func TestConcurrentRunsShareTheAPIKeySecret(t *testing.T) {
	client := fake.NewClientset()
	m := secrets.New(client, secrets.Options{WorkerName: "etl-worker"})
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			job := testJob([]corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey)})
			_, errs[i] = m.ReplaceAPIKey(t.Context(), job)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := m.Tracked(); len(got) != 1 {
		t.Fatalf("Tracked = %v, want the one Secret", got)
	}
	if err := m.Close(t.Context()); err != nil || !secretGone(t, client, keySecret) {
		t.Fatalf("Close = %v", err)
	}
}

// TestNoSecretValueReachesTheLogOrTheJob runs every operation with a Debug
// logger and checks that no value appears in the log, the Job or an error.
func TestNoSecretValueReachesTheLogOrTheJob(t *testing.T) {
	values := []string{apiKey, "postgres://u:hunter2@db/x", "s3cr3t-token"}
	var log bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := fake.NewClientset()
	m := secrets.New(client, secrets.Options{WorkerName: "etl-worker", Logger: logger})
	ctx := t.Context()

	job := testJob([]corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey), plain("DB_URL", values[1]), plain("TOKEN", values[2]), fieldRef("POD")})
	if _, err := m.ReplaceAPIKey(ctx, job); err != nil {
		t.Fatal(err)
	}
	rs, err := m.PrepareRun(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Adopt(ctx, createdJob(job, "etl-abcde")); err != nil {
		t.Fatal(err)
	}
	// A refused value must not leak through the error either.
	bad := testJob([]corev1.EnvVar{plain("TOKEN", "$("+values[2]+")")})
	_, refused := m.PrepareRun(ctx, bad)
	if refused == nil {
		t.Fatal("want an error")
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}

	spec, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if log.Len() == 0 || !strings.Contains(log.String(), runSecret) {
		t.Fatalf("want Debug lines naming the Secrets; log:\n%s", log.String())
	}
	for _, v := range values {
		if strings.Contains(log.String(), v) {
			t.Errorf("the log holds a secret value:\n%s", log.String())
		}
		if strings.Contains(string(spec), v) {
			t.Errorf("the Job spec holds a secret value: %s", spec)
		}
		if strings.Contains(refused.Error(), v) {
			t.Errorf("an error holds a secret value: %v", refused)
		}
	}
	if s := getSecret(t, client, runSecret); string(s.Data["DB_URL"]) != values[1] || string(s.Data["TOKEN"]) != values[2] || len(s.Data) != 2 {
		t.Errorf("run Secret keys %v, want DB_URL and TOKEN with their values", keys(s.Data))
	}
	if !strings.Contains(string(spec), `"name":"`+secrets.DefaultAPIKeyEnv+`","valueFrom":{"secretKeyRef":{"name":"`+keySecret+`","key":"value"}}`) {
		t.Errorf("the Job does not read the API key from its Secret: %s", spec)
	}
	if job.Labels[manifest.LabelRunID] != testRunID {
		t.Errorf("labels changed")
	}
}

// storedButFailed makes every create store the Secret and then fail with
// err, as when the connection breaks after the API server has written it.
func storedButFailed(client *fake.Clientset, err error) {
	client.PrependReactor("create", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		obj := a.(clienttesting.CreateAction).GetObject()
		if addErr := client.Tracker().Create(secretsGR.WithVersion("v1"), obj, a.GetNamespace()); addErr != nil {
			return true, nil, addErr
		}
		return true, nil, err
	})
}

func TestCloseDeletesASecretWhoseCreateMayHaveBeenStored(t *testing.T) {
	ambiguous := []error{
		apierrors.NewServerTimeout(secretsGR, "create", 1),
		apierrors.NewInternalError(errors.New("etcd leader changed")),
		errors.New("http2: client connection lost"),
	}
	for _, failure := range ambiguous {
		t.Run("retried: the stored Secret is taken as made: "+failure.Error(), func(t *testing.T) {
			client := fake.NewClientset()
			storedButFailed(client, failure)
			m := secrets.New(client, secrets.Options{WorkerName: "etl-worker", Retry: fast})
			if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); err != nil {
				t.Fatal(err)
			}
			if _, err := m.PrepareRun(t.Context(), testJob([]corev1.EnvVar{plain("A", "value-one")})); err != nil {
				t.Fatal(err)
			}
			if got := m.Tracked(); len(got) != 2 {
				t.Fatalf("Tracked = %v, want both Secrets", got)
			}
			if err := m.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !secretGone(t, client, keySecret) || !secretGone(t, client, runSecret) {
				t.Fatal("Close left a Secret behind")
			}
		})
		t.Run("retries off: "+failure.Error(), func(t *testing.T) {
			client := fake.NewClientset()
			storedButFailed(client, failure)
			m := secrets.New(client, secrets.Options{WorkerName: "etl-worker", Retry: noRetry})
			if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); err == nil {
				t.Fatal("UpsertAPIKey succeeded")
			}
			job := testJob([]corev1.EnvVar{plain("A", "value-one")})
			before := job.DeepCopy()
			if _, err := m.PrepareRun(t.Context(), job); err == nil {
				t.Fatal("PrepareRun succeeded")
			}
			if job.String() != before.String() {
				t.Error("a failed PrepareRun changed the job")
			}
			if got := m.Tracked(); len(got) != 2 {
				t.Fatalf("Tracked = %v, want both Secrets", got)
			}
			if err := m.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			if !secretGone(t, client, keySecret) || !secretGone(t, client, runSecret) {
				t.Fatal("Close left a Secret behind")
			}
		})
	}
	t.Run("a 4xx answer says nothing was stored", func(t *testing.T) {
		client := fake.NewClientset()
		failTimes(client, "create", 100, apierrors.NewForbidden(secretsGR, keySecret, errors.New("no")))
		m := secrets.New(client, secrets.Options{WorkerName: "etl-worker"})
		if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); !apierrors.IsForbidden(err) {
			t.Fatalf("UpsertAPIKey = %v, want Forbidden", err)
		}
		if _, err := m.PrepareRun(t.Context(), testJob([]corev1.EnvVar{plain("A", "value-one")})); !apierrors.IsForbidden(err) {
			t.Fatalf("PrepareRun = %v, want Forbidden", err)
		}
		if got := m.Tracked(); len(got) != 0 {
			t.Fatalf("Tracked = %v, want nothing", got)
		}
	})
}

package secrets_test

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

const keySecret = "kubeworker-etl-worker-api-key"

func TestAPIKeySecretName(t *testing.T) {
	tests := []struct {
		name, worker, want string
		noSlug             bool
	}{
		{name: "slugifies the worker name", worker: "ETL Worker #1", want: "kubeworker-etl-worker-1-api-key"},
		{name: "keeps a name that is already a slug", worker: "etl-worker", want: keySecret},
		{name: "cuts a long name to the slug's 45 characters", worker: strings.Repeat("w", 60), want: "kubeworker-" + strings.Repeat("w", 45) + "-api-key"},
		{name: "refuses a name with no letter or digit", worker: "!!!", noSlug: true},
		{name: "refuses an empty name", worker: "", noSlug: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.APIKeySecretName(tt.worker)
			if tt.noSlug {
				if !errors.Is(err, manifest.ErrNoSlug) {
					t.Fatalf("APIKeySecretName(%q) = %q, %v; want ErrNoSlug", tt.worker, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("APIKeySecretName(%q) = %q, %v; want %q", tt.worker, got, err, tt.want)
			}
		})
	}
}

func TestUpsertAPIKey(t *testing.T) {
	managed := map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}
	tests := []struct {
		name     string
		existing *corev1.Secret
		setup    func(*fake.Clientset)
		tracked  bool // Close would delete it
		updates  int
		gets     int
		check    func(t *testing.T, err error) // for an error case
	}{
		{name: "creates the Secret with the key under value when there is none", tracked: true, gets: 1},
		{
			name:     "replaces the data of an existing Secret, dropping other keys",
			existing: secret(keySecret, nil, map[string]string{"value": "old", "other": "x"}),
			updates:  1, gets: 1,
		},
		{
			name:     "leaves a Secret that already holds the key unchanged",
			existing: secret(keySecret, managed, map[string]string{"value": apiKey}),
			gets:     1,
		},
		{
			name:     "retries a conflicting update with a fresh read",
			existing: secret(keySecret, nil, map[string]string{"value": "old"}),
			setup:    func(c *fake.Clientset) { failTimes(c, "update", 2, conflict(keySecret)) },
			updates:  3, gets: 3,
		},
		{
			name: "updates the Secret that another writer created between read and create",
			setup: func(c *fake.Clientset) {
				// The create loses a race: the Secret appears, made by someone else.
				c.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
					err := c.Tracker().Add(secret(keySecret, nil, map[string]string{"value": "theirs"}))
					if err != nil {
						return true, nil, err
					}
					return true, nil, apierrors.NewAlreadyExists(secretsGR, keySecret)
				})
			},
			updates: 1, gets: 2,
		},
		{
			name:     "gives up with the conflict when every try conflicts",
			existing: secret(keySecret, nil, map[string]string{"value": "old"}),
			setup:    func(c *fake.Clientset) { failTimes(c, "update", 100, conflict(keySecret)) },
			updates:  5, gets: 5,
			check: func(t *testing.T, err error) {
				if !apierrors.IsConflict(err) {
					t.Errorf("error %v is not the conflict", err)
				}
			},
		},
		{
			name: "wraps a forbidden read without retrying it",
			setup: func(c *fake.Clientset) {
				failTimes(c, "get", 100, apierrors.NewForbidden(secretsGR, keySecret, errors.New("no")))
			},
			gets: 1,
			check: func(t *testing.T, err error) {
				if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), testNS+"/"+keySecret) {
					t.Errorf("error %v is not a Forbidden naming the Secret", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			if tt.existing != nil {
				objs = append(objs, tt.existing)
			}
			client := fake.NewClientset(objs...)
			if tt.setup != nil {
				tt.setup(client)
			}
			m := secrets.New(client, secrets.Options{WorkerName: "etl-worker"})
			ref, err := m.UpsertAPIKey(t.Context(), testNS, apiKey)
			updates, gets := count(client, "update"), count(client, "get")
			if tt.check != nil {
				if err == nil {
					t.Fatal("UpsertAPIKey succeeded, want an error")
				}
				tt.check(t, err)
			} else {
				if err != nil {
					t.Fatalf("UpsertAPIKey: %v", err)
				}
				if want := (secrets.Ref{Namespace: testNS, Name: keySecret}); ref != want {
					t.Errorf("ref = %v, want %v", ref, want)
				}
				s := getSecret(t, client, keySecret)
				if len(s.Data) != 1 || string(s.Data["value"]) != apiKey {
					t.Errorf("secret data has keys %v, want only value with the API key", keys(s.Data))
				}
			}
			if got := len(m.Tracked()) == 1; got != tt.tracked {
				t.Errorf("tracked = %v (%v), want %t", got, m.Tracked(), tt.tracked)
			}
			if updates != tt.updates {
				t.Errorf("%d updates, want %d", updates, tt.updates)
			}
			if gets != tt.gets {
				t.Errorf("%d gets, want %d", gets, tt.gets)
			}
		})
	}
}

func TestUpsertAPIKeyNeedsAWorkerName(t *testing.T) {
	m := secrets.New(fake.NewClientset(), secrets.Options{})
	if _, err := m.UpsertAPIKey(t.Context(), testNS, apiKey); !errors.Is(err, manifest.ErrNoSlug) {
		t.Fatalf("UpsertAPIKey without a worker name: %v, want ErrNoSlug", err)
	}
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestReplaceAPIKey(t *testing.T) {
	ref := func(name, secretName, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: key}}}
	}
	tests := []struct {
		name       string
		opts       secrets.Options
		env        []corev1.EnvVar
		containers []string // default: one, "main"
		runIn      int      // index of the run container
		setup      func(*fake.Clientset)
		want       []corev1.EnvVar // the run container's env after
		changed    bool
		created    bool // the worker's Secret exists after
		errHas     string
	}{
		{
			name:    "moves the key into the worker's Secret and references it",
			env:     []corev1.EnvVar{plain("A", "1"), plain(secrets.DefaultAPIKeyEnv, apiKey), plain("B", "2")},
			want:    []corev1.EnvVar{plain("A", "1"), ref(secrets.DefaultAPIKeyEnv, keySecret, "value"), plain("B", "2")},
			changed: true, created: true,
		},
		{
			name:       "finds the run container by name, not by position",
			opts:       secrets.Options{Container: "main"},
			containers: []string{"sidecar", "main"}, runIn: 1,
			env:     []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey)},
			want:    []corev1.EnvVar{ref(secrets.DefaultAPIKeyEnv, keySecret, "value")},
			changed: true, created: true,
		},
		{
			name:    "uses the configured env name",
			opts:    secrets.Options{APIKeyEnv: "PREFECT_API_KEY"},
			env:     []corev1.EnvVar{plain("PREFECT_API_KEY", apiKey), plain(secrets.DefaultAPIKeyEnv, "not-this")},
			want:    []corev1.EnvVar{ref("PREFECT_API_KEY", keySecret, "value"), plain(secrets.DefaultAPIKeyEnv, "not-this")},
			changed: true, created: true,
		},
		{
			name: "leaves a job without the entry alone",
			env:  []corev1.EnvVar{plain("A", "1")},
			want: []corev1.EnvVar{plain("A", "1")},
		},
		{
			name: "leaves an empty entry alone",
			env:  []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, "")},
			want: []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, "")},
		},
		{
			name: "leaves an entry that is already a reference alone",
			env:  []corev1.EnvVar{ref(secrets.DefaultAPIKeyEnv, "theirs", "k")},
			want: []corev1.EnvVar{ref(secrets.DefaultAPIKeyEnv, "theirs", "k")},
		},
		{
			name:    "with an existing Secret only points the entry at it",
			opts:    secrets.Options{APIKeySecret: secrets.KeyRef{Name: "org-api-key", Key: "token"}},
			env:     []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey), plain("A", "1")},
			want:    []corev1.EnvVar{ref(secrets.DefaultAPIKeyEnv, "org-api-key", "token"), plain("A", "1")},
			changed: true,
		},
		{
			name:    "with an existing Secret adds the entry when there is none, key defaulting to value",
			opts:    secrets.Options{APIKeySecret: secrets.KeyRef{Name: "org-api-key"}},
			env:     []corev1.EnvVar{plain("A", "1")},
			want:    []corev1.EnvVar{plain("A", "1"), ref(secrets.DefaultAPIKeyEnv, "org-api-key", "value")},
			changed: true,
		},
		{
			name: "leaves the job unchanged when the upsert fails",
			env:  []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey)},
			setup: func(c *fake.Clientset) {
				failTimes(c, "create", 1, apierrors.NewForbidden(secretsGR, keySecret, errors.New("no")))
			},
			want:   []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey)},
			errHas: "forbidden",
		},
		{
			name:       "names the containers when the run container is missing",
			opts:       secrets.Options{Container: "run"},
			containers: []string{"main", "sidecar"},
			env:        []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey)},
			want:       []corev1.EnvVar{plain(secrets.DefaultAPIKeyEnv, apiKey)},
			errHas:     `no container "run", only main, sidecar`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset()
			if tt.setup != nil {
				tt.setup(client)
			}
			tt.opts.WorkerName = "etl-worker"
			m := secrets.New(client, tt.opts)
			job := testJob(nil, tt.containers...)
			job.Spec.Template.Spec.Containers[tt.runIn].Env = tt.env
			changed, err := m.ReplaceAPIKey(t.Context(), job)
			calls := len(client.Actions())
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("ReplaceAPIKey: %v, want an error with %q", err, tt.errHas)
				}
			} else if err != nil {
				t.Fatalf("ReplaceAPIKey: %v", err)
			}
			if changed != tt.changed {
				t.Errorf("changed = %t, want %t", changed, tt.changed)
			}
			if got := job.Spec.Template.Spec.Containers[tt.runIn].Env; !equalEnv(got, tt.want) {
				t.Errorf("env = %+v\nwant  %+v", got, tt.want)
			}
			if created := !secretGone(t, client, keySecret); created != tt.created {
				t.Errorf("worker's Secret exists = %t, want %t", created, tt.created)
			}
			if tt.opts.APIKeySecret.Name != "" && calls > 0 {
				t.Errorf("with an existing Secret, want no API calls; got %d", calls)
			}
		})
	}
}

func equalEnv(a, b []corev1.EnvVar) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Value != b[i].Value || (a[i].ValueFrom == nil) != (b[i].ValueFrom == nil) {
			return false
		}
		if a[i].ValueFrom != nil && a[i].ValueFrom.String() != b[i].ValueFrom.String() {
			return false
		}
	}
	return true
}

package secrets_test

import (
	"errors"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

var runSecret = "kubeworker-run-" + testRunID + "-env"

func TestRunSecretName(t *testing.T) {
	tests := []struct {
		name, runID, want string
		wantPrefix        string // when the name carries a hash
	}{
		{name: "uses a UUID as it is", runID: testRunID, want: runSecret},
		{name: "hashes an ID that is not its own slug", runID: "Run_1", wantPrefix: "kubeworker-run-run-1."},
		{name: "hashes an ID longer than a slug", runID: strings.Repeat("a", 63), wantPrefix: "kubeworker-run-" + strings.Repeat("a", 45) + "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := secrets.RunSecretName(tt.runID)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("RunSecretName(%q) = %q, want %q", tt.runID, got, tt.want)
			}
			if tt.wantPrefix != "" && (!strings.HasPrefix(got, tt.wantPrefix) || !strings.HasSuffix(got, "-env") || len(got) != len(tt.wantPrefix)+10+4) {
				t.Errorf("RunSecretName(%q) = %q, want %s<10 hex>-env", tt.runID, got, tt.wantPrefix)
			}
			if msgs := content.IsDNS1123Subdomain(got); len(msgs) > 0 {
				t.Errorf("%q is not a valid name: %v", got, msgs)
			}
			if again, _ := secrets.RunSecretName(tt.runID); again != got {
				t.Errorf("not deterministic: %q then %q", got, again)
			}
		})
	}
	t.Run("gives IDs with the same slug different names", func(t *testing.T) {
		a, _ := secrets.RunSecretName("Run_1")
		b, _ := secrets.RunSecretName("run-1")
		c, _ := secrets.RunSecretName("RUN-1")
		if a == b || b == c || a == c {
			t.Fatalf("names collide: %q, %q, %q", a, b, c)
		}
	})
	t.Run("never gives a hashed name to a plain ID", func(t *testing.T) {
		hashed, _ := secrets.RunSecretName("Run_1") // kubeworker-run-run-1.<hash>-env
		hash := strings.TrimSuffix(strings.TrimPrefix(hashed, "kubeworker-run-run-1."), "-env")
		for _, id := range []string{"run-1-" + hash, "run-1." + hash} {
			if name, _ := secrets.RunSecretName(id); name == hashed {
				t.Fatalf("RunSecretName(%q) = RunSecretName(%q) = %q", id, "Run_1", name)
			}
		}
	})
	t.Run("refuses an ID with no letter or digit", func(t *testing.T) {
		if _, err := secrets.RunSecretName("___"); !errors.Is(err, manifest.ErrNoSlug) {
			t.Fatalf("err = %v, want ErrNoSlug", err)
		}
	})
}

func TestPrepareRun(t *testing.T) {
	ours := map[string]string{manifest.LabelRunID: testRunID, manifest.LabelManagedBy: manifest.ManagedBy}
	tests := []struct {
		name     string
		opts     secrets.Options
		env      []corev1.EnvVar
		envFrom  []corev1.EnvFromSource
		existing *corev1.Secret
		noRunID  bool
		wantData map[string]string // nil: no Secret
		wantEnv  []corev1.EnvVar
		errIs    error
		errHas   []string
	}{
		{
			name:     "moves plain values into a Secret that envFrom reads",
			env:      []corev1.EnvVar{plain("DB_URL", "postgres://u:pw@db/x"), plain("EMPTY", ""), plain("my.dotted-name", "v")},
			wantData: map[string]string{"DB_URL": "postgres://u:pw@db/x", "EMPTY": "", "my.dotted-name": "v"},
		},
		{
			name:     "keeps valueFrom entries inline",
			env:      []corev1.EnvVar{fieldRef("POD"), plain("A", "1")},
			wantData: map[string]string{"A": "1"},
			wantEnv:  []corev1.EnvVar{fieldRef("POD")},
		},
		{
			name:     "appends its envFrom after the container's own, so the run's values still win",
			env:      []corev1.EnvVar{plain("A", "1")},
			envFrom:  []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "defaults"}}}},
			wantData: map[string]string{"A": "1"},
		},
		{
			name:    "creates nothing when there is no plain value",
			env:     []corev1.EnvVar{fieldRef("POD")},
			wantEnv: []corev1.EnvVar{fieldRef("POD")},
		},
		{
			name:   "refuses $(VAR) references and $$ escapes, naming each entry",
			env:    []corev1.EnvVar{plain("HOME_BIN", "$(HOME)/bin"), plain("PRICE", "5$$"), plain("OK", "$HOME")},
			errIs:  secrets.ErrInvalidEnv,
			errHas: []string{"spec.template.spec.containers[0].env[0].value", "HOME_BIN", "env[1].value", "PRICE"},
		},
		{
			name:     "keeps expanding values inline when asked",
			opts:     secrets.Options{KeepExpansionsInline: true},
			env:      []corev1.EnvVar{plain("A", "1"), plain("HOME_BIN", "$(HOME)/bin")},
			wantData: map[string]string{"A": "1"},
			wantEnv:  []corev1.EnvVar{plain("HOME_BIN", "$(HOME)/bin")},
		},
		{
			name:   "refuses names that cannot be keys of a Secret read by envFrom",
			env:    []corev1.EnvVar{plain("MY VAR", "value-one"), plain("1ST", "value-two"), plain("OK", "value-three")},
			errIs:  secrets.ErrInvalidEnv,
			errHas: []string{`env[0].name: Invalid value: "MY VAR"`, `env[1].name: Invalid value: "1ST"`},
		},
		{
			name:   "refuses a name given twice",
			env:    []corev1.EnvVar{fieldRef("A"), plain("A", "value-one")},
			errIs:  secrets.ErrInvalidEnv,
			errHas: []string{`env[1].name: Duplicate value: "A"`},
		},
		{
			name:    "needs the run-ID label",
			env:     []corev1.EnvVar{plain("A", "1")},
			noRunID: true,
			errHas:  []string{manifest.LabelRunID},
		},
		{
			name:     "updates the Secret of an earlier try of the same run",
			env:      []corev1.EnvVar{plain("A", "new")},
			existing: secret(runSecret, ours, map[string]string{"A": "old", "B": "gone"}),
			wantData: map[string]string{"A": "new"},
		},
		{
			name:     "refuses a Secret of the same name made for another run",
			env:      []corev1.EnvVar{plain("A", "value-one")},
			existing: secret(runSecret, map[string]string{manifest.LabelRunID: "another-run"}, map[string]string{"X": "theirs"}),
			errIs:    secrets.ErrForeignSecret,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var objs []runtime.Object
			if tt.existing != nil {
				objs = append(objs, tt.existing)
			}
			client := fake.NewClientset(objs...)
			m := secrets.New(client, tt.opts)
			job := testJob(tt.env)
			job.Spec.Template.Spec.Containers[0].EnvFrom = tt.envFrom
			if tt.noRunID {
				delete(job.Labels, manifest.LabelRunID)
			}
			before := job.DeepCopy()
			rs, err := m.PrepareRun(t.Context(), job)
			if tt.errIs != nil || tt.errHas != nil {
				if err == nil {
					t.Fatal("PrepareRun succeeded, want an error")
				}
				if tt.errIs != nil && !errors.Is(err, tt.errIs) {
					t.Errorf("error %v does not match %v", err, tt.errIs)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				for _, e := range tt.env {
					if e.Value != "" && strings.Contains(err.Error(), e.Value) {
						t.Errorf("error %q holds the value of %s", err, e.Name)
					}
				}
				if job.String() != before.String() {
					t.Errorf("a failed PrepareRun changed the job")
				}
				if tt.existing != nil && !equalData(getSecret(t, client, tt.existing.Name).Data, tt.existing.Data) {
					t.Errorf("a failed PrepareRun changed the existing Secret")
				}
				return
			}
			if err != nil {
				t.Fatalf("PrepareRun: %v", err)
			}
			c := job.Spec.Template.Spec.Containers[0]
			if !equalEnv(c.Env, tt.wantEnv) {
				t.Errorf("env left in the job = %+v, want %+v", c.Env, tt.wantEnv)
			}
			if tt.wantData == nil {
				if rs.Name() != "" || count(client, "create") != 0 || len(c.EnvFrom) != len(tt.envFrom) {
					t.Fatalf("made Secret %q and envFrom %v; want neither", rs.Name(), c.EnvFrom)
				}
				return
			}
			if rs.Name() != runSecret || rs.Namespace() != testNS {
				t.Errorf("RunSecret %s/%s, want %s/%s", rs.Namespace(), rs.Name(), testNS, runSecret)
			}
			s := getSecret(t, client, runSecret)
			if !equalData(s.Data, toBytes(tt.wantData)) {
				t.Errorf("secret data keys %v, want %v", keys(s.Data), tt.wantData)
			}
			for k, v := range ours {
				if s.Labels[k] != v {
					t.Errorf("secret label %s = %q, want %q", k, s.Labels[k], v)
				}
			}
			want := append(append([]corev1.EnvFromSource{}, tt.envFrom...), corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: runSecret}}})
			if len(c.EnvFrom) != len(want) || c.EnvFrom[len(want)-1].String() != want[len(want)-1].String() {
				t.Errorf("envFrom = %v, want %v", c.EnvFrom, want)
			}
		})
	}
}

func toBytes(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

// createdJob returns job as if the API server had created it.
func createdJob(job *batchv1.Job, name string) *batchv1.Job {
	job = job.DeepCopy()
	job.Name, job.UID = name, types.UID("uid-"+name)
	return job
}

func prepared(t *testing.T, client *fake.Clientset, m *secrets.Manager) (*batchv1.Job, *secrets.RunSecret) {
	t.Helper()
	job := testJob([]corev1.EnvVar{plain("A", "1")})
	rs, err := m.PrepareRun(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	return job, rs
}

func TestRunSecretAdopt(t *testing.T) {
	t.Run("adds a non-controlling batch/v1 Job owner reference", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		if err := rs.Adopt(t.Context(), createdJob(job, "etl-abcde")); err != nil {
			t.Fatal(err)
		}
		owners := getSecret(t, client, runSecret).OwnerReferences
		want := metav1.OwnerReference{APIVersion: "batch/v1", Kind: "Job", Name: "etl-abcde", UID: "uid-etl-abcde", Controller: new(false), BlockOwnerDeletion: new(false)}
		if len(owners) != 1 || owners[0].String() != want.String() {
			t.Fatalf("ownerReferences = %v, want [%v]", owners, want)
		}
		if len(m.Tracked()) != 0 {
			t.Errorf("an adopted Secret is still tracked: %v", m.Tracked())
		}
	})
	t.Run("changes nothing when called again", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		created := createdJob(job, "etl-abcde")
		for range 2 {
			if err := rs.Adopt(t.Context(), created); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(client, "update"); n != 1 {
			t.Fatalf("%d updates, want 1", n)
		}
	})
	t.Run("retries a conflicting update with a fresh read", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		failTimes(client, "update", 1, conflict(runSecret))
		gets := count(client, "get")
		if err := rs.Adopt(t.Context(), createdJob(job, "etl-abcde")); err != nil {
			t.Fatal(err)
		}
		if n := count(client, "get") - gets; n != 2 {
			t.Errorf("%d reads, want 2", n)
		}
		if owners := getSecret(t, client, runSecret).OwnerReferences; len(owners) != 1 {
			t.Errorf("ownerReferences = %v, want one", owners)
		}
	})
	t.Run("needs the created job with its UID", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		if err := rs.Adopt(t.Context(), job); err == nil || !strings.Contains(err.Error(), "UID") {
			t.Fatalf("Adopt of an uncreated job: %v, want an error about its UID", err)
		}
		other := createdJob(job, "etl-abcde")
		other.Namespace = "elsewhere"
		if err := rs.Adopt(t.Context(), other); err == nil || !strings.Contains(err.Error(), "namespace") {
			t.Fatalf("Adopt of a job in another namespace: %v", err)
		}
	})
	t.Run("reports a Secret deleted meanwhile", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		if err := client.CoreV1().Secrets(testNS).Delete(t.Context(), runSecret, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := rs.Adopt(t.Context(), createdJob(job, "etl-abcde")); !apierrors.IsNotFound(err) {
			t.Fatalf("Adopt: %v, want NotFound", err)
		}
	})
	t.Run("leaves the Secret to its job: Discard and Close do nothing after it", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		if err := rs.Adopt(t.Context(), createdJob(job, "etl-abcde")); err != nil {
			t.Fatal(err)
		}
		if err := rs.Discard(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := m.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if secretGone(t, client, runSecret) || count(client, "delete") != 0 {
			t.Fatal("an adopted Secret was deleted")
		}
	})
}

func TestRunSecretDiscard(t *testing.T) {
	t.Run("deletes the Secret once, then does nothing", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		job, rs := prepared(t, client, m)
		for range 2 {
			if err := rs.Discard(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if !secretGone(t, client, runSecret) || count(client, "delete") != 1 || len(m.Tracked()) != 0 {
			t.Fatalf("gone=%t deletes=%d tracked=%v; want gone, 1 delete, nothing tracked", secretGone(t, client, runSecret), count(client, "delete"), m.Tracked())
		}
		if err := rs.Adopt(t.Context(), createdJob(job, "etl-abcde")); err == nil {
			t.Fatal("Adopt after Discard succeeded")
		}
	})
	t.Run("counts a Secret already gone as deleted", func(t *testing.T) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{})
		_, rs := prepared(t, client, m)
		failTimes(client, "delete", 1, apierrors.NewNotFound(secretsGR, runSecret))
		if err := rs.Discard(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("keeps tracking a Secret it failed to delete", func(t *testing.T) {
		client := fake.NewClientset()
		// Retries off, so that the 503 fails the delete.
		m := secrets.New(client, secrets.Options{Retry: noRetry})
		_, rs := prepared(t, client, m)
		failTimes(client, "delete", 1, apierrors.NewServiceUnavailable("etcd down"))
		if err := rs.Discard(t.Context()); !apierrors.IsServiceUnavailable(err) {
			t.Fatalf("Discard: %v, want the 503", err)
		}
		if len(m.Tracked()) != 1 {
			t.Fatalf("tracked = %v, want the Secret", m.Tracked())
		}
		if err := rs.Discard(t.Context()); err != nil || !secretGone(t, client, runSecret) {
			t.Fatalf("second Discard: %v", err)
		}
	})
	t.Run("a RunSecret with nothing moved does nothing", func(t *testing.T) {
		client := fake.NewClientset()
		rs, err := secrets.New(client, secrets.Options{}).PrepareRun(t.Context(), testJob(nil))
		if err != nil {
			t.Fatal(err)
		}
		if rs.Adopt(t.Context(), nil) != nil || rs.Discard(t.Context()) != nil || len(client.Actions()) != 0 {
			t.Fatal("an empty RunSecret did something")
		}
	})
}

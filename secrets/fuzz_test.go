package secrets_test

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

// FuzzRunSecretName checks that a run's Secret name is always a valid
// object name, the same for the same ID, or an error wrapping ErrNoSlug.
func FuzzRunSecretName(f *testing.F) {
	for _, s := range []string{testRunID, "Run_1", "run-1", "", "___", strings.Repeat("x", 63), "ünïcode-ID"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		name, err := secrets.RunSecretName(id)
		if err != nil {
			if !errors.Is(err, manifest.ErrNoSlug) {
				t.Fatalf("RunSecretName(%q): %v, not ErrNoSlug", id, err)
			}
			return
		}
		if msgs := content.IsDNS1123Subdomain(name); len(msgs) > 0 {
			t.Fatalf("RunSecretName(%q) = %q: %v", id, name, msgs)
		}
		if again, _ := secrets.RunSecretName(id); again != name {
			t.Fatalf("RunSecretName(%q) gave %q then %q", id, name, again)
		}
	})
}

// FuzzPrepareRun checks, for two env entries of any name and value, that
// PrepareRun either refuses them with ErrInvalidEnv, naming no value, or
// moves exactly the plain ones into the Secret and leaves none in the Job.
func FuzzPrepareRun(f *testing.F) {
	f.Add("A", "1", "B", "2", false)
	f.Add("A", "$(B)", "B", "x", true)
	f.Add("MY VAR", "v", "A", "$$", false)
	f.Add("A", "1", "A", "2", false)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, keep bool) {
		client := fake.NewClientset()
		m := secrets.New(client, secrets.Options{KeepExpansionsInline: keep})
		job := testJob([]corev1.EnvVar{plain(n1, v1), plain(n2, v2), fieldRef("POD")})
		rs, err := m.PrepareRun(t.Context(), job)
		if err != nil {
			if !errors.Is(err, secrets.ErrInvalidEnv) {
				t.Fatalf("PrepareRun: %v, not ErrInvalidEnv", err)
			}
			// The error depends on a value only through whether it
			// expands, so it cannot show the value itself.
			stand := func(v string) string {
				if strings.Contains(v, "$(") || strings.Contains(v, "$$") {
					return "$(X)"
				}
				return "x"
			}
			other := testJob([]corev1.EnvVar{plain(n1, stand(v1)), plain(n2, stand(v2)), fieldRef("POD")})
			_, err2 := secrets.New(fake.NewClientset(), secrets.Options{KeepExpansionsInline: keep}).PrepareRun(t.Context(), other)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("the error depends on the values:\n%v\n%v", err, err2)
			}
			return
		}
		c := job.Spec.Template.Spec.Containers[0]
		var data map[string][]byte
		if rs.Name() != "" {
			s, err := client.CoreV1().Secrets(testNS).Get(t.Context(), rs.Name(), metav1GetOptions())
			if err != nil {
				t.Fatal(err)
			}
			data = s.Data
		}
		for _, e := range []corev1.EnvVar{plain(n1, v1), plain(n2, v2)} {
			_, inSecret := data[e.Name]
			inline := false
			for _, k := range c.Env {
				inline = inline || k.Name == e.Name && k.Value == e.Value
			}
			if inSecret == inline {
				t.Fatalf("entry %q: in Secret %t, inline %t; want exactly one", e.Name, inSecret, inline)
			}
			if inSecret && string(data[e.Name]) != e.Value {
				t.Fatalf("entry %q: wrong value in the Secret", e.Name)
			}
			if inline && !keep {
				t.Fatalf("entry %q stayed inline without KeepExpansionsInline", e.Name)
			}
		}
	})
}

package clustertest

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestExpandEnvAsTheKubeletDoes: a reference resolves only to an entry
// defined earlier in the list.
func TestExpandEnvAsTheKubeletDoes(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Env: []corev1.EnvVar{
		{Name: "EARLY", Value: "a-$(NAME)"}, // NAME comes later: left as written
		{Name: "NAME", Value: "world"},
		{Name: "GREETING", Value: "hello $(NAME)"},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{}},
	}}}}}
	env := containerEnv(pod, "main")
	for line, want := range map[string]string{
		"$(GREETING)":        "hello world",
		"$(EARLY)":           "a-$(NAME)",
		"$(SECRET) $(NOPE)":  "$(SECRET) $(NOPE)",
		"$$(NAME) costs $$5": "$(NAME) costs $5",
		"open $(NAME":        "open $(NAME",
		"plain $ sign":       "plain $ sign",
	} {
		if got := expandEnv(line, env); got != want {
			t.Errorf("expandEnv(%q) = %q, want %q", line, got, want)
		}
	}
}

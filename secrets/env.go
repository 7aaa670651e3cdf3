package secrets

import (
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ErrInvalidEnv is matched by the error of [Manager.PrepareRun] when an
// env entry cannot move into a Secret without changing what the run sees.
// The error lists every such entry by its path and name, never its value.
// Fix the template, or set Options.KeepExpansionsInline; a retry cannot
// help.
var ErrInvalidEnv = errors.New("env cannot move into a Secret")

// splitEnv divides env into the data of the run's Secret (the plain
// values) and the entries that stay in the Job spec (valueFrom entries,
// and, with keepExpansions, values that the kubelet would expand).
func splitEnv(env []corev1.EnvVar, keepExpansions bool, path *field.Path) (data map[string][]byte, kept []corev1.EnvVar, moved []string, err error) {
	var errs field.ErrorList
	plain := make(map[string]bool, len(env))
	for _, e := range env {
		plain[e.Name] = plain[e.Name] || e.ValueFrom == nil
	}
	// A name given twice is ambiguous once one of them moves: an inline
	// entry always wins over envFrom, whatever the order.
	seen, dup := map[string]bool{}, map[string]bool{}
	for i, e := range env {
		if seen[e.Name] && plain[e.Name] && !dup[e.Name] {
			dup[e.Name] = true
			errs = append(errs, field.Duplicate(path.Index(i).Child("name"), e.Name))
		}
		seen[e.Name] = true
	}
	data = map[string][]byte{}
	for i, e := range env {
		p := path.Index(i)
		switch {
		case dup[e.Name]:
		case e.ValueFrom != nil:
			kept = append(kept, e)
		case expands(e.Value) && keepExpansions:
			kept = append(kept, e)
		case expands(e.Value):
			errs = append(errs, field.Forbidden(p.Child("value"), fmt.Sprintf(
				"%s holds \"$(\" or \"$$\", which the kubelet expands in an inline value but not in one from envFrom; "+
					"remove the reference, or set KeepExpansionsInline to leave this entry (and its value) in the Job", e.Name)))
		default:
			if msgs := envFromName(e.Name); len(msgs) > 0 {
				errs = append(errs, field.Invalid(p.Child("name"), e.Name, "cannot be a key of the Secret that envFrom reads: "+strings.Join(msgs, "; ")))
				continue
			}
			data[e.Name] = []byte(e.Value)
			moved = append(moved, e.Name)
		}
	}
	if len(errs) > 0 {
		return nil, nil, nil, fmt.Errorf("secrets: %w: %w", ErrInvalidEnv, errs.ToAggregate())
	}
	return data, kept, moved, nil
}

// expands reports whether the kubelet's $(VAR) expansion could change v:
// it rewrites "$$" to "$" and "$(NAME)" to NAME's value.
func expands(v string) bool {
	return strings.Contains(v, "$(") || strings.Contains(v, "$$")
}

// envFromName returns why name cannot be a key of a Secret used by
// envFrom: it must be a Secret key ([-._a-zA-Z0-9]+) and an env var name
// that kubelets without the relaxed name rule (GA in 1.34) also take from
// envFrom ([-._a-zA-Z][-._a-zA-Z0-9]*).
func envFromName(name string) []string {
	if name == "" {
		return []string{"is empty"}
	}
	msgs := validation.IsConfigMapKey(name)
	if len(msgs) == 0 {
		msgs = validation.IsEnvVarName(name)
	}
	return msgs
}

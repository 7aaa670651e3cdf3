package manifest

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Error reports every problem found in one step (loading, values, rendering,
// validation or preparation), each as a [field.Error] with its path, such as
// job_configuration.job_manifest.spec.template.spec.containers[0].env.
//
// Callers reach it with errors.As; each entry is also reachable on its own,
// because Unwrap returns them all.
type Error struct {
	// Step names what failed: "load", "values", "render", "validate" or
	// "prepare".
	Step string
	// Errs holds one entry per problem, in the order they were found.
	Errs field.ErrorList
}

// Error lists every problem, one per line after the first.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("manifest: ")
	b.WriteString(e.Step)
	if len(e.Errs) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Errs[0].Error())
		return b.String()
	}
	b.WriteString(": ")
	b.WriteString(plural(len(e.Errs), "problem", "problems"))
	for _, fe := range e.Errs {
		b.WriteString("\n\t")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Unwrap returns each entry, so errors.As finds a *field.Error.
func (e *Error) Unwrap() []error {
	out := make([]error, len(e.Errs))
	for i, fe := range e.Errs {
		out[i] = fe
	}
	return out
}

// asError returns nil for an empty list, else an *Error for step.
func asError(step string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return &Error{Step: step, Errs: errs}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

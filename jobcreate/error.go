package jobcreate

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ErrDuplicateRun means the cluster holds a Job for the run that Create
// cannot take as its own: more than one Job with the run's ID, or one made
// from another spec.
var ErrDuplicateRun = errors.New("the cluster already holds a different Job for this run")

// Error is a failed Job creation. It keeps the API's reason and
// message, adds a hint for the common causes, and wraps the last error, so
// errors.As reaches the *apierrors.StatusError and the apierrors.Is*
// predicates still work.
type Error struct {
	Namespace string
	Name      string // the Job's name, or its generateName
	RunID     string
	Attempts  int
	Reason    metav1.StatusReason // "" when the API gave no status
	Message   string
	// Hint says what to check, for quota exceeded, forbidden (RBAC) and a
	// missing namespace; "" otherwise.
	Hint string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "create Job %s/%s for run %s", e.Namespace, e.Name, e.RunID)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	}
	b.WriteString(": ")
	if e.Reason != "" {
		b.WriteString(string(e.Reason))
		b.WriteString(": ")
		b.WriteString(e.Message)
	} else {
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// rbacDenial finds the verb and resource in the API server's message for
// a request RBAC denied: `... cannot get resource "jobs" in API group ...`.
var rbacDenial = regexp.MustCompile(`cannot ([a-z]+) resource "([a-z/]+)"`)

// newError describes err, adding a hint for the causes a user can fix.
func newError(namespace, name, runID string, attempts int, err error) *Error {
	ce := &Error{Namespace: namespace, Name: name, RunID: runID, Attempts: attempts, Err: err}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return ce
	}
	st := status.Status()
	ce.Reason, ce.Message = st.Reason, st.Message
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(st.Message, "exceeded quota"):
		// The API says quota only in the message; this is the documented form.
		ce.Hint = fmt.Sprintf("a ResourceQuota in namespace %q is used up; see kubectl describe resourcequota -n %s", namespace, namespace)
	case apierrors.IsForbidden(err):
		verb, resource := "create", "jobs"
		if m := rbacDenial.FindStringSubmatch(st.Message); m != nil {
			verb, resource = m[1], m[2]
		}
		ce.Hint = fmt.Sprintf("the worker's identity may not %s %s in namespace %q; check its Role and RoleBinding (kubectl auth can-i %s %s -n %s --as ...)", verb, resource, namespace, verb, resource, namespace)
	case apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces":
		ce.Hint = fmt.Sprintf("namespace %q does not exist; create it or set the template's namespace", namespace)
	}
	return ce
}

// Explain wraps err, the API server's refusal of job, in an *Error with
// the hint Create would give, for a caller that sent the request itself
// (a server-side dry run, say).
func Explain(job *batchv1.Job, runID string, err error) *Error {
	return newError(job.Namespace, jobName(job), runID, 1, err)
}

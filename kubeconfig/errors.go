package kubeconfig

import "errors"

// ErrUntrusted is matched, through errors.Is, by every error of a Load
// with Options.Untrusted that refuses the kubeconfig for what it would
// do on the worker's host.
var ErrUntrusted = errors.New("kubeconfig: refused from untrusted input")

// UntrustedError is one field that Options.Untrusted refuses. Load
// returns them all at once, sorted by Field, joined with errors.Join.
type UntrustedError struct {
	// Field is the field's path in the kubeconfig, its entry named by
	// its quoted name: users["ci"].user.exec,
	// clusters["prod"].cluster.proxy-url.
	Field string
	// why says what the field would do and what to give instead.
	why string
}

// Error names the field and what to do; it never holds the field's value.
func (e *UntrustedError) Error() string {
	why := e.why
	if why == "" {
		why = "a kubeconfig from a run's values may not set this"
	}
	return "kubeconfig: " + e.Field + ": " + why
}

// Is reports whether target is ErrUntrusted.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrusted }

// InvalidError is one problem that makes a kubeconfig unusable, found
// before client-go builds anything. Load returns them all at once,
// joined with errors.Join.
type InvalidError struct {
	// Field is the path of the field at fault, in the form of
	// UntrustedError.Field; "context" is Options.Context.
	Field string
	// Detail says what is wrong. It names entries, never a secret.
	Detail string
}

// Error returns Field and Detail.
func (e *InvalidError) Error() string { return "kubeconfig: " + e.Field + ": " + e.Detail }

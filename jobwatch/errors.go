package jobwatch

import "errors"

// Errors returned by Wait, matched with errors.Is. Each wraps the cause
// (an API status, a validation message) where there is one. Every ending
// of the Job itself is a Result, never an error.
var (
	// ErrInvalidRef: the JobRef's namespace or name is not a valid name.
	ErrInvalidRef = errors.New("jobwatch: invalid job reference")
	// ErrNotFound: the Job did not exist when Wait began. Once Wait has
	// seen the Job, its deletion is Outcome Deleted instead.
	ErrNotFound = errors.New("jobwatch: job not found")
	// ErrNotSelected: the Job or its pod template does not carry labels
	// matching Options.Selector, so the shared streams cannot see it.
	ErrNotSelected = errors.New("jobwatch: job does not match the watcher's selector")
	// ErrContainerNotFound: WaitOptions.Container names no container of
	// the Job's pod template.
	ErrContainerNotFound = errors.New("jobwatch: no such container in the job's pod template")
	// ErrClosed: the Watcher was closed before or during Wait.
	ErrClosed = errors.New("jobwatch: watcher closed")
)

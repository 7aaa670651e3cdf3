// Command kubeworker renders, checks, preflights and runs kubeworker
// templates from a shell, and starts the local test cluster. Flags follow
// kubectl's: -f for the template, -o for the output, --kubeconfig,
// --context and -n.
//
//	kubeworker render    [-f TEMPLATE] [--values FILE] [--set NAME=VALUE]... [-o yaml|json]
//	kubeworker validate  [-f TEMPLATE] [--values FILE] [--set NAME=VALUE]...
//	kubeworker preflight [-f TEMPLATE] [--values FILE] [--set ...] [--kubeconfig FILE] [--context NAME] [-n NS] [-o text|json]
//	kubeworker run       [-f TEMPLATE] [--values FILE] [--set ...] [--kubeconfig FILE] [--context NAME] [-n NS] [--run-id ID]
//	kubeworker cluster up [--kubeconfig FILE] [--kueue]
//	kubeworker cluster provision [--kueue]
//
// render prints the Job a Worker would create for a run, validate prints
// every problem of a template and its values at once, preflight checks a
// cluster's permissions and a server-side dry run of the Job, run runs one
// Job to its end with its log streamed and exits with the run's exit code,
// cluster up starts the local control plane of package clustertest (the
// one kubeworker's own tests use) and cluster provision builds its
// binaries into the cache ahead of go test.
//
// Without -f, the built-in default template is used; --job-file reads -f
// as a complete Job manifest. A --set value is read as YAML (--set
// backoff_limit=2 is a number); quote it to keep a string. Exit status: 0
// on success, 1 on an error (a message naming the file, path or flag),
// 2 on bad usage; run exits with the run container's exit code, or 1 when
// the run ended without one.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is bad usage: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitError ends the command with a status of its own (run's exit code).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

const usage = `usage: kubeworker <command> [flags]

commands:
  render     print the Job a template gives for a run
  validate   print every problem of a template and its values
  preflight  check a cluster's permissions and a dry run of the Job
  run        run one Job to its end, log streamed, Result printed
  cluster up start the local test cluster (cluster provision: build it)

kubeworker <command> -h shows the command's flags.`

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "kubeworker: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "kubeworker: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return &usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "render":
		return render(rest, stdin, stdout, stderr)
	case "validate":
		return validate(rest, stdin, stdout, stderr)
	case "preflight":
		return preflight(ctx, rest, stdin, stdout, stderr)
	case "run":
		return run(ctx, rest, stdin, stdout, stderr)
	case "cluster":
		return cluster(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	fmt.Fprintln(stderr, usage)
	return &usageError{fmt.Sprintf("unknown command %q", cmd)}
}

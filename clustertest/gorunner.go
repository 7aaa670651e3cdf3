package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// goRunner runs the go command in throw-away modules, printing each step.
type goRunner struct {
	goBin string
	p     *progress
}

func newGoRunner(p *progress) (*goRunner, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("building the test cluster needs the go command: %w", err)
	}
	return &goRunner{goBin: goBin, p: p}, nil
}

// moduleEnv is the environment for go commands in a throw-away module: no
// workspace, go.mod updated as needed, no toolchain switch.
func moduleEnv() []string {
	return append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
}

// run runs go with args in dir and returns its standard output. If step is
// not empty, it is printed as a progress step. A failure carries the end of
// the command's standard error.
func (r *goRunner) run(ctx context.Context, step, dir string, env []string, args ...string) ([]byte, error) {
	var stdout []byte
	do := func() error {
		cmd := exec.CommandContext(ctx, r.goBin, args...)
		cmd.Dir = dir
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 30))
		}
		stdout = out
		return nil
	}
	if step == "" {
		return stdout, do()
	}
	return stdout, r.p.step(step, do)
}

// tempModule makes an empty module in a new temporary directory and
// returns the directory and a function that removes it.
func (r *goRunner) tempModule(ctx context.Context, name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "kubeworker-build-"+name+"-")
	if err != nil {
		return "", nil, fmt.Errorf("make build directory: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	if _, err := r.run(ctx, "", dir, moduleEnv(), "mod", "init", "kubeworker.local/build/"+name); err != nil {
		cleanup()
		return "", nil, err
	}
	return dir, cleanup, nil
}

// buildTo builds pkg into out atomically: a half-written binary is never
// taken for a built one.
func (r *goRunner) buildTo(ctx context.Context, dir, out, pkg string, flags ...string) error {
	tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".tmp")
	args := append(append([]string{"build"}, flags...), "-o", tmp, pkg)
	if _, err := r.run(ctx, "build "+filepath.Base(out), dir, moduleEnv(), args...); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("install %s: %w", out, err)
	}
	return nil
}

// lastLines returns at most the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// process is one running control-plane program. Its output goes to a log
// file, appended to across restarts.
type process struct {
	name    string
	path    string
	args    []string
	env     []string
	dir     string // working directory; "" is the test's
	logPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the program has exited
	err  error         // how it exited; read after done
}

// newProcess describes a program; start runs it.
func newProcess(name, path string, args []string, logDir string) *process {
	return &process{name: name, path: path, args: args, logPath: filepath.Join(logDir, name+".log")}
}

// start launches the program in its own process group, so that stopping
// it also stops anything it started. The kernel kills it if the test
// binary dies first (Pdeathsig), so a crashed or timed-out test leaves no
// control plane behind. (Pdeathsig follows the forking thread; the Go
// runtime ends a thread only when a goroutine exits locked to it, which
// nothing here does.)
func (p *process) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s log: %w", p.name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return nil
}

// pid is the program's process ID, also its process group ID.
func (p *process) pid() int {
	return p.cmd.Process.Pid
}

// exited reports whether the program has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the program's process group.
func (p *process) signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// kill stops the program's process group with SIGKILL and waits for it.
func (p *process) kill() error {
	if p.cmd == nil {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.pid())
	}
}

// waitReady polls check until it succeeds, the program exits, or timeout
// passes. A failure carries the end of the program's log.
func (p *process) waitReady(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return p.failure(fmt.Errorf("exited (%v) before it was ready", p.err))
		case <-ctx.Done():
			return p.failure(fmt.Errorf("not ready after %s: %w", timeout, last))
		case <-tick.C:
		}
	}
}

// failure wraps err with the program's name and the end of its log.
func (p *process) failure(err error) error {
	log, _ := os.ReadFile(p.logPath)
	if bytes.Contains(log, []byte("address already in use")) {
		err = fmt.Errorf("%w: %w", errPortTaken, err)
	}
	return fmt.Errorf("%s: %w\nlast lines of %s:\n%s", p.name, err, p.logPath, lastLines(string(log), 25))
}

// launch starts p and waits until check passes. If p fails to get ready,
// launch kills it, so the caller tracks only programs that run.
func launch(ctx context.Context, p *process, timeout time.Duration, check func(context.Context) error) (*process, error) {
	if err := p.start(); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, timeout, check); err != nil {
		return nil, errors.Join(err, p.kill())
	}
	return p, nil
}

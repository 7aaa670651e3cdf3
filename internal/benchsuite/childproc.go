package benchsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// measuredChild is a child process that runs a measured Worker in one of
// ChildMain's modes: it is sent its params as a JSON line, says "ran"
// once every run has returned (holding its Worker open), and, told
// "close", closes its Worker and writes its result as JSON.
type measuredChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Reader
	cancel context.CancelFunc
}

// startChild starts a child in mode, bounded by timeout, and sends it
// params.
func startChild(ctx context.Context, mode string, params any, timeout time.Duration, stderr io.Writer) (*measuredChild, error) {
	line, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	cmd := exec.CommandContext(cctx, os.Args[0], childArgs()...)
	cmd.Env = append(os.Environ(), ChildEnv+"="+mode)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start the child: %w", err)
	}
	fmt.Fprintf(stdin, "%s\n", line)
	return &measuredChild{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), cancel: cancel}, nil
}

// ran waits until the child says every run has returned.
func (c *measuredChild) ran() error {
	if line, err := c.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ran" {
		return fmt.Errorf("the child said %q before its runs ended (%v)", line, err)
	}
	return nil
}

// close tells the child to close its Worker, and reads its result into
// result.
func (c *measuredChild) close(result any) error {
	defer c.cancel()
	fmt.Fprintln(c.stdin, "close")
	c.stdin.Close()
	rest, err := io.ReadAll(c.out)
	if err != nil {
		return c.abort(err)
	}
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("the child: %w", err)
	}
	if err := json.Unmarshal(rest, result); err != nil {
		return fmt.Errorf("the child said %q: %w", rest, err)
	}
	return nil
}

// abort ends the child after err, and returns err with the child's own
// error, if any.
func (c *measuredChild) abort(err error) error {
	defer c.cancel()
	c.stdin.Close()
	io.Copy(io.Discard, c.out)
	if werr := c.cmd.Wait(); werr != nil {
		return fmt.Errorf("%w (the child: %v)", err, werr)
	}
	return err
}

// readParams reads the child's params, a JSON line, into p.
func readParams(r *bufio.Reader, p any) error {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	if err := json.Unmarshal(line, p); err != nil {
		return fmt.Errorf("params %q: %w", line, err)
	}
	return nil
}

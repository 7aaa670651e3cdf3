package clustertest

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// RestartAPIServer stops the API server with sig and starts a new one on
// the same port with the same flags, returning once the new one is ready
// (typically 3 s). Clients built from [Cluster.Config] keep working; they
// reach the new server as soon as it listens, before its /readyz passes,
// when it may deny an RBAC-bound user (kubernetes#121635). Clients of
// [Cluster.ProxyConfig] get 503 until it is ready, as behind a load
// balancer.
//
// With syscall.SIGKILL every connection drops at once; a client-go watch
// channel just closes, with no error event. With syscall.SIGTERM the old
// server shuts down as in a rolling update: it stops listening at once,
// ends watches within 2 s, and lives on, in the background, while log
// follow streams through it last; the new server starts as soon as the
// port is free. Other signals are refused. etcd keeps its data, so
// resourceVersions stay valid, except that with [Options.WatchCache] on, a
// watch from a resourceVersion taken before the restart gets 410 Gone.
func (c *Cluster) RestartAPIServer(ctx context.Context, sig syscall.Signal) error {
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return fmt.Errorf("restart the API server with %v: only SIGKILL and SIGTERM are supported", sig)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("restart the API server: the cluster is stopped")
	}
	old := c.apiserver
	c.proxy.restarting.Store(true)
	if err := old.signal(sig); err != nil {
		c.proxy.restarting.Store(false)
		return err
	}
	if err := waitPortReleased(ctx, old, c.api.port); err != nil {
		return err
	}
	p, err := startAPIServer(ctx, c.bins.KubeAPIServer, c.files.dir, c.adminHTTP, c.api, c.opts.startTimeout())
	if err != nil {
		return fmt.Errorf("restart the API server: %w", err)
	}
	c.procs = append(c.procs, p)
	c.apiserver = p
	c.proxy.restarting.Store(false) // the new server's /readyz passed
	return nil
}

// controllerManagerGrace is how long RestartControllerManager waits for
// kube-controller-manager to exit after SIGTERM before it sends SIGKILL.
const controllerManagerGrace = 30 * time.Second

// RestartControllerManager stops kube-controller-manager with sig and
// starts a new one on the same port with the same flags, returning once
// the new one is healthy (typically under a second). Unlike the API server's, the
// old process is gone before the new one starts: without leader election
// two would run every controller twice. With syscall.SIGKILL it dies at
// once; with syscall.SIGTERM it shuts down its controllers and exits, and
// is killed if it has not exited after 30 s. Other signals are refused.
// All state is in the API server, so the new controllers take over where
// the old ones stopped: a Job created before or during the restart runs
// once the new Job controller has synced.
func (c *Cluster) RestartControllerManager(ctx context.Context, sig syscall.Signal) error {
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return fmt.Errorf("restart the controller manager with %v: only SIGKILL and SIGTERM are supported", sig)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("restart the controller manager: the cluster is stopped")
	}
	old := c.controllerManager
	if old == nil {
		return fmt.Errorf("restart the controller manager: it was never started")
	}
	if !old.exited() { // else it died by itself: just start a new one
		if err := old.signal(sig); err != nil {
			return fmt.Errorf("restart the controller manager: %w", err)
		}
	}
	if err := waitExit(ctx, old, controllerManagerGrace); err != nil {
		return fmt.Errorf("restart the controller manager: %w", err)
	}
	// The old process has exited and been waited for: Stop need not kill
	// it, and must not signal a process group ID the system may reuse.
	c.procs = slices.DeleteFunc(c.procs, func(p *process) bool { return p == old })
	p, err := startControllerManager(ctx, c.bins.KubeControllerManager, c.files.dir, c.health, c.kcm, c.opts.startTimeout())
	if err != nil {
		return fmt.Errorf("restart the controller manager: %w", err)
	}
	c.procs = append(c.procs, p)
	c.controllerManager = p
	return nil
}

// waitExit waits until p has exited, killing it if it is still running
// after grace.
func waitExit(ctx context.Context, p *process, grace time.Duration) error {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for %s (pid %d) to exit: %w", p.name, p.pid(), ctx.Err())
	case <-timer.C:
		return p.kill()
	}
}

// waitPortReleased waits until p has exited or no longer accepts
// connections on port.
func waitPortReleased(ctx context.Context, p *process, port int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	addr := net.JoinHostPort(loopback, strconv.Itoa(port))
	for {
		if p.exited() {
			return nil
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		conn.Close()
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%s (pid %d) still listens on %s: %w", p.name, p.pid(), addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CompactEtcd compacts etcd's history up to its current revision and
// returns that revision. With the watch cache off (the default, see
// [Options.WatchCache]), a watch or an exact list from any older
// resourceVersion then fails with a real 410 Gone (reason Expired), as
// after etcd's periodic compaction in a long-lived cluster.
func (c *Cluster) CompactEtcd(ctx context.Context) (int64, error) {
	return compactEtcd(ctx, c.etcd.clientURL())
}

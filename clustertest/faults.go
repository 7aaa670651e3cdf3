package clustertest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// RestartAPIServer stops the API server with sig and starts a new one on
// the same port with the same flags, returning once the new one is ready
// (typically 3 s). Clients built from [Cluster.Config] keep working.
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
	if err := old.signal(sig); err != nil {
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
	return nil
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

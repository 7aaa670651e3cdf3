package clustertest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// egress is the API server's only way out to the cluster's network:
// kube-apiserver's "cluster" egress selection (webhooks, kubelets,
// aggregated API servers) is an HTTP CONNECT tunnel through it, over a
// Unix socket. There is no kube-proxy, so it maps each Service address
// that a component registered (route) to the loopback port behind it;
// any other target is dialled only if it is 127.0.0.1. So nothing is ever
// dialled off the machine's loopback, whatever the API server asks for.
type egress struct {
	ln   net.Listener
	sock string

	mu     sync.Mutex
	routes map[string]string // "10.96.0.12:443" → "127.0.0.1:38123"
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startEgress listens on a Unix socket in dir, or in a new directory under
// the system's temporary directory when dir's path is too long for one.
func startEgress(dir string) (*egress, error) {
	sock := filepath.Join(dir, "egress.sock")
	if len(sock) > 100 { // sun_path holds 108 bytes
		short, err := os.MkdirTemp("", "kw-egress-")
		if err != nil {
			return nil, fmt.Errorf("make egress socket directory: %w", err)
		}
		sock = filepath.Join(short, "s")
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("listen for the API server's egress: %w", err)
	}
	e := &egress{ln: ln, sock: sock, routes: map[string]string{}, conns: map[net.Conn]struct{}{}}
	e.wg.Go(e.serve)
	return e, nil
}

// config is kube-apiserver's EgressSelectorConfiguration, for
// --egress-selector-config-file.
func (e *egress) config() ([]byte, error) {
	data, err := yaml.Marshal(map[string]any{
		"apiVersion": "apiserver.k8s.io/v1beta1",
		"kind":       "EgressSelectorConfiguration",
		"egressSelections": []any{map[string]any{
			"name": "cluster",
			"connection": map[string]any{
				"proxyProtocol": "HTTPConnect",
				"transport":     map[string]any{"uds": map[string]any{"udsName": e.sock}},
			},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("encode the egress configuration: %w", err)
	}
	return data, nil
}

// route sends connections for addr (a Service's host:port) to the
// loopback port to; an empty to removes the route.
func (e *egress) route(addr, to string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if to == "" {
		delete(e.routes, addr)
		return
	}
	e.routes[addr] = to
}

// target returns where a CONNECT to addr goes, or an error when nowhere.
func (e *egress) target(addr string) (string, error) {
	e.mu.Lock()
	to, ok := e.routes[addr]
	e.mu.Unlock()
	if ok {
		return to, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host != loopback {
		return "", fmt.Errorf("%s is neither %s nor a Service the cluster serves", addr, loopback)
	}
	return addr, nil
}

func (e *egress) serve() {
	for {
		conn, err := e.ln.Accept()
		if err != nil {
			return // closed
		}
		if !e.track(conn, true) {
			conn.Close()
			return
		}
		e.wg.Go(func() {
			defer e.track(conn, false)
			e.tunnel(conn)
		})
	}
}

// track adds or removes an open connection; false once closed.
func (e *egress) track(conn net.Conn, add bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !add {
		delete(e.conns, conn)
		return true
	}
	if e.closed {
		return false
	}
	e.conns[conn] = struct{}{}
	return true
}

// tunnel answers one CONNECT and then copies bytes both ways until either
// side closes.
func (e *egress) tunnel(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	conn.SetReadDeadline(time.Time{})
	if req.Method != http.MethodConnect {
		fmt.Fprintf(conn, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	to, err := e.target(req.Host)
	if err != nil {
		fmt.Fprintf(conn, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\r\n%v\n", err)
		return
	}
	up, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		fmt.Fprintf(conn, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n\r\n%v\n", err)
		return
	}
	if !e.track(up, true) {
		up.Close()
		return
	}
	defer e.track(up, false)
	defer up.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(up, br) // what the client sent early is in br
		if c, ok := up.(*net.TCPConn); ok {
			c.CloseWrite()
		}
	}()
	io.Copy(conn, up)
	conn.Close()
	up.Close()
	<-done
}

// close stops accepting, cuts every tunnel and waits for them.
func (e *egress) close() error {
	e.mu.Lock()
	e.closed = true
	for c := range e.conns {
		c.Close()
	}
	e.mu.Unlock()
	err := e.ln.Close()
	e.wg.Wait()
	if filepath.Base(e.sock) == "s" {
		os.RemoveAll(filepath.Dir(e.sock))
	}
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

package clustertest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// echoServer answers each connection by echoing what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", loopback+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// connect opens a tunnel to addr through e and returns its status and,
// for 200, the tunnel.
func connect(t *testing.T, e *egress, addr string) (int, net.Conn) {
	t.Helper()
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		c.Close()
		return res.StatusCode, nil
	}
	if br.Buffered() > 0 {
		t.Fatal("bytes after the CONNECT answer")
	}
	t.Cleanup(func() { c.Close() })
	return res.StatusCode, c
}

func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v; want the echo", buf, err)
	}
}

func TestEgressDialsOnlyLoopbackAndRoutedServices(t *testing.T) {
	e, err := startEgress(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.close()
	echo := echoServer(t)

	t.Run("loopback", func(t *testing.T) {
		code, c := connect(t, e, echo)
		if code != http.StatusOK {
			t.Fatalf("CONNECT %s: %d", echo, code)
		}
		roundTrip(t, c)
	})
	t.Run("a routed Service address", func(t *testing.T) {
		e.route("10.96.0.12:443", echo)
		code, c := connect(t, e, "10.96.0.12:443")
		if code != http.StatusOK {
			t.Fatalf("CONNECT 10.96.0.12:443: %d", code)
		}
		roundTrip(t, c)
		e.route("10.96.0.12:443", "")
		if code, _ := connect(t, e, "10.96.0.12:443"); code != http.StatusForbidden {
			t.Errorf("after the route's removal: %d, want 403", code)
		}
	})
	t.Run("anything else is refused", func(t *testing.T) {
		for _, addr := range []string{"10.96.0.13:443", "192.0.2.1:443", "[::1]:443", "localhost:443", "example.com:443"} {
			if code, _ := connect(t, e, addr); code != http.StatusForbidden {
				t.Errorf("CONNECT %s: %d, want 403", addr, code)
			}
		}
	})
	t.Run("a closed port is a 502", func(t *testing.T) {
		ln, err := net.Listen("tcp", loopback+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if code, _ := connect(t, e, addr); code != http.StatusBadGateway {
			t.Errorf("CONNECT %s: %d, want 502", addr, code)
		}
	})
	t.Run("close cuts open tunnels", func(t *testing.T) {
		e2, err := startEgress(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		_, c := connect(t, e2, echo)
		if err := e2.close(); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a tunnel outlived close")
		}
	})
}

func TestEgressConfigSelectsTheClusterTrafficOverItsSocket(t *testing.T) {
	long := t.TempDir() + "/" + strings.Repeat("d", 100)
	for _, dir := range []string{t.TempDir(), long} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		e, err := startEgress(dir)
		if err != nil {
			t.Fatal(err)
		}
		data, err := e.config()
		if err != nil {
			t.Fatal(err)
		}
		var conf struct {
			Kind             string
			EgressSelections []struct {
				Name       string
				Connection struct {
					ProxyProtocol string
					Transport     struct{ UDS struct{ UDSName string } }
				}
			}
		}
		if err := yaml.Unmarshal(data, &conf); err != nil {
			t.Fatal(err)
		}
		if len(conf.EgressSelections) != 1 {
			t.Fatalf("selections: %s", data)
		}
		s := conf.EgressSelections[0]
		if conf.Kind != "EgressSelectorConfiguration" || s.Name != "cluster" || s.Connection.ProxyProtocol != "HTTPConnect" || s.Connection.Transport.UDS.UDSName != e.sock {
			t.Errorf("configuration:\n%s", data)
		}
		if len(e.sock) > 100 {
			t.Errorf("socket path of %d bytes", len(e.sock))
		}
		if err := e.close(); err != nil {
			t.Fatal(err)
		}
	}
}

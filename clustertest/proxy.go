package clustertest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/rest"
)

// Proxy is a loopback HTTPS reverse proxy in front of the API server that
// drops connections on demand. It forwards each request with the client's
// Authorization and Impersonate-* headers, so a bearer-token identity
// keeps its RBAC identity through it; a client certificate cannot pass (the
// proxy ends TLS), so clients use tokens ([Proxy.Config]). Responses
// stream unbuffered, so watches and log follows work through it. While
// [Cluster.RestartAPIServer] restarts the API server, from the signal
// until the new server's /readyz passes, the proxy answers new requests
// 503 with Retry-After: 1, as a load balancer whose health check finds no
// ready server would: a server that has started but not synced its RBAC
// caches denies requests it would allow a moment later, and clients
// behind a load balancer never see that. While the API server is down
// otherwise, the proxy answers 502.
type Proxy struct {
	url      string
	caPEM    []byte
	server   *http.Server
	upstream *http.Transport

	mu    sync.Mutex
	conns map[net.Conn]struct{} // open client connections
	armed []func(*http.Request) bool
	// refused holds the matchers of Refuse, by a key that undoes them.
	refused map[*int]func(*http.Request) bool
	// observers holds the functions of Observe, by a key that undoes them.
	observers map[*int]func(*http.Request)
	// byUserAgent counts the requests received per User-Agent header.
	byUserAgent map[string]int64

	// restarting is set while Cluster.RestartAPIServer has no ready
	// server to forward to.
	restarting      atomic.Bool
	requests        atomic.Int64
	cutConns        atomic.Int64
	cutRequests     atomic.Int64
	refusedRequests atomic.Int64
}

// ProxyStats counts what went through a [Proxy].
type ProxyStats struct {
	// Requests is the number of requests received.
	Requests int64
	// CutConnections is the number of client connections closed by
	// [Proxy.CutAll] or by a cut request.
	CutConnections int64
	// CutRequests is the number of requests cut by
	// [Proxy.CutNextAfterResponse].
	CutRequests int64
	// RefusedRequests is the number of requests answered 503 by
	// [Proxy.Refuse].
	RefusedRequests int64
	// ByUserAgent is the number of requests received per User-Agent
	// header value ("" for none), counted as Requests is, so a test can
	// count one client's requests (client-go sends rest.Config.UserAgent)
	// without trusting the client's own count. It is the caller's copy,
	// never nil; an agent that sent nothing reads 0.
	ByUserAgent map[string]int64
}

type connKey struct{}

// errCut marks a response the proxy throws away on purpose.
var errCut = errors.New("clustertest: request cut after the API server answered")

// startProxy serves on a free loopback port with a certificate for
// 127.0.0.1 and localhost signed by ca, forwarding to upstream, which it
// trusts through ca.
func startProxy(ca *certAuthority, upstream string) (*Proxy, error) {
	target, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("parse API server URL: %w", err)
	}
	serving, err := ca.serving("testcluster-proxy", loopback, "localhost")
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(serving.certPEM, serving.keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load proxy certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	listener, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen for the proxy: %w", err)
	}
	p := &Proxy{
		url:      "https://" + listener.Addr().String(),
		caPEM:    ca.certPEM,
		upstream: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true},
		conns:    map[net.Conn]struct{}{},
		refused:  map[*int]func(*http.Request) bool{},

		byUserAgent: map[string]int64{},
	}
	forward := &httputil.ReverseProxy{
		Rewrite:        func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:      p.upstream,
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
	}
	p.server = &http.Server{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.count(r); p.serve(forward, w, r) }),
		TLSConfig:   &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ConnState:   p.track,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ErrorLog:    log.New(io.Discard, "", 0), // TLS handshake noise from cut clients
	}
	go p.server.ServeTLS(listener, "", "")
	return p, nil
}

// URL is the proxy's address, https://127.0.0.1:PORT.
func (p *Proxy) URL() string {
	return p.url
}

// Config returns a rest.Config that reaches the API server through the
// proxy, authenticated by token (an admin or service-account token).
func (p *Proxy) Config(token string) *rest.Config {
	return tokenConfig(p.url, p.caPEM, token)
}

// CutAll closes every open client connection at once, including
// long-running watches and log follow streams, and returns how many it
// closed. Clients see their connections drop, as when a load balancer
// fails; requests in flight may or may not have reached the API server.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for c := range p.conns {
		hardClose(c)
		delete(p.conns, c)
	}
	p.cutConns.Add(int64(n))
	return n
}

// CutNextAfterResponse arms a one-shot fault: the next request for which
// match returns true is forwarded, the API server's full answer is read
// and then thrown away, and the client's connection is closed. The client
// sees a dropped connection although the server did the work: an
// ambiguous failure. Each call arms one more cut. match sees the request
// as forwarded (same method, path and headers); it is called under a lock
// and must be quick, and it must not pick a watch or a follow, whose answer
// never ends.
func (p *Proxy) CutNextAfterResponse(match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = append(p.armed, match)
}

// Refuse makes the proxy answer every request for which match returns
// true with 503 Service Unavailable, without forwarding it, until undo is
// called; requests already forwarded are not affected. It stands for a
// gateway or a server that will not serve a kind of request (for example
// long-running watches). match is called under a lock and must be quick.
func (p *Proxy) Refuse(match func(*http.Request) bool) (undo func()) {
	key := new(int)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused[key] = match
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.refused, key)
	}
}

// count adds r to the request counters.
func (p *Proxy) count(r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.byUserAgent[r.UserAgent()]++
	for _, see := range p.observers {
		see(r)
	}
}

// Observe calls see with every request the proxy receives, refused ones
// included, until undo is called: a test counts requests by kind with
// it. see is called under a lock and must be quick.
func (p *Proxy) Observe(see func(*http.Request)) (undo func()) {
	key := new(int)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.observers == nil {
		p.observers = map[*int]func(*http.Request){}
	}
	p.observers[key] = see
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.observers, key)
	}
}

// serve refuses or forwards r.
func (p *Proxy) serve(forward http.Handler, w http.ResponseWriter, r *http.Request) {
	if p.restarting.Load() {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no ready API server behind the test proxy: it is restarting", http.StatusServiceUnavailable)
		return
	}
	p.mu.Lock()
	refuse := false
	for _, match := range p.refused {
		if refuse = match(r); refuse {
			break
		}
	}
	p.mu.Unlock()
	if refuse {
		p.refusedRequests.Add(1)
		http.Error(w, "refused by the test proxy", http.StatusServiceUnavailable)
		return
	}
	forward.ServeHTTP(w, r)
}

// Stats returns the proxy's counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	byAgent := maps.Clone(p.byUserAgent)
	p.mu.Unlock()
	return ProxyStats{
		Requests:        p.requests.Load(),
		CutConnections:  p.cutConns.Load(),
		CutRequests:     p.cutRequests.Load(),
		RefusedRequests: p.refusedRequests.Load(),
		ByUserAgent:     byAgent,
	}
}

// close stops the proxy and closes every connection, to clients and to
// the API server.
func (p *Proxy) close() error {
	err := p.server.Close()
	p.upstream.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close proxy: %w", err)
	}
	return nil
}

func (p *Proxy) track(c net.Conn, state http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch state {
	case http.StateNew:
		p.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(p.conns, c)
	}
}

// take reports whether r matches an armed cut, disarming it.
func (p *Proxy) take(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, match := range p.armed {
		if match(r) {
			p.armed = append(p.armed[:i], p.armed[i+1:]...)
			return true
		}
	}
	return false
}

// modifyResponse reads a cut request's answer to its end, so the API
// server has fully answered, and turns it into errCut.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	if !p.take(resp.Request) {
		return nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return errCut
}

// errorHandler drops the client's connection for a cut request and
// answers 502 for an unreachable API server.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, errCut) {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	p.cutRequests.Add(1)
	if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
		p.cutConns.Add(1)
		hardClose(c)
	}
	panic(http.ErrAbortHandler)
}

// hardClose resets a client connection: no TLS close_notify, no FIN, so
// the client sees "connection reset", not a clean end of stream.
func hardClose(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	c.Close()
}

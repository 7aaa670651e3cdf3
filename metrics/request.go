package metrics

import (
	"context"
	"sync"
)

// Request is the kind of an API request: its verb and resource, as the
// API server's authorization sees them.
type Request struct {
	// Verb is the Kubernetes verb: get, list, watch, create, update,
	// patch, delete or deletecollection. A log stream is a get of
	// pods/log (the API server's own metrics call it CONNECT). For a
	// path that names no resource (discovery, /version), the HTTP method
	// in lower case.
	Verb string
	// Resource is the resource, with its subresource after a slash
	// ("jobs", "pods/log", "jobs/status"), without its API group. Empty
	// for a path that names no resource.
	Resource string
}

// String returns "verb resource", or the verb alone if there is no
// resource.
func (r Request) String() string {
	if r.Resource == "" {
		return r.Verb
	}
	return r.Verb + " " + r.Resource
}

// Requests counts requests by kind.
type Requests map[Request]int

// Total returns the number of requests of every kind.
func (r Requests) Total() int {
	n := 0
	for _, c := range r {
		n += c
	}
	return n
}

// RequestCount counts the requests made with a context that carries it
// (see WithRequestCount), through a transport wrapped by WrapTransport.
// The zero value is an empty count. It is safe for concurrent use.
type RequestCount struct {
	mu sync.Mutex
	n  Requests // guarded by mu
}

func (c *RequestCount) add(r Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = Requests{}
	}
	c.n[r]++
}

// Requests returns a copy of the count so far, never nil; of a nil
// count, an empty one.
func (c *RequestCount) Requests() Requests {
	if c == nil {
		return Requests{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Requests, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// Total returns the number of requests counted so far; 0 for a nil
// count.
func (c *RequestCount) Total() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n.Total()
}

type countKey struct{}

// WithRequestCount returns a copy of ctx that carries c: every request
// made with it (or a context derived from it) through a transport
// wrapped by WrapTransport is added to c. A count in ctx already is
// replaced for those requests, not added to. A nil c means no count.
func WithRequestCount(ctx context.Context, c *RequestCount) context.Context {
	return context.WithValue(ctx, countKey{}, c)
}

// RequestCountFrom returns the count that ctx carries, or nil.
func RequestCountFrom(ctx context.Context) *RequestCount {
	c, _ := ctx.Value(countKey{}).(*RequestCount)
	return c
}

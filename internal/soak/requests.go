package soak

import (
	"net/http"
	"strings"
	"sync"
)

// requestKey is a kind of request: who sent it, its verb and resource.
type requestKey struct{ agent, verb, resource string }

func (k requestKey) String() string { return k.agent + " " + k.verb + " " + k.resource }

type requestCounts map[requestKey]int64

// requestCounter counts the requests through the fault proxy by kind.
type requestCounter struct {
	mu sync.Mutex
	n  requestCounts
}

func (c *requestCounter) observe(r *http.Request) {
	verb := strings.ToLower(r.Method)
	if r.URL.Query().Get("watch") == "true" {
		verb = "watch"
	}
	k := requestKey{agent: r.UserAgent(), verb: verb, resource: resourceOf(r.URL.Path)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = requestCounts{}
	}
	c.n[k]++
}

func (c *requestCounter) counts() requestCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := requestCounts{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// resourceOf reads the resource (and subresource) of an API path:
// /api/v1/namespaces/ns/pods/p/log is "pods/log", /apis/batch/v1/jobs
// "jobs".
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return path
	}
	if len(parts) >= 2 && parts[0] == "namespaces" {
		if len(parts) == 2 {
			return "namespaces"
		}
		parts = parts[2:]
	}
	switch len(parts) {
	case 0:
		return path
	case 1, 2:
		return parts[0]
	}
	return parts[0] + "/" + parts[2]
}

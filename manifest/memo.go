package manifest

import (
	"sync"
	"sync/atomic"
)

// memo keeps the results of a pure function of a string, which a worker
// computes again and again for the same few strings of its template. It
// keeps at most max keys of at most maxLen bytes, so that arbitrary input
// cannot grow it without bound, and never a failure.
type memo[V any] struct {
	max    int64
	maxLen int
	m      sync.Map // string → V
	n      atomic.Int64
}

// get returns f(key), computed once for a key the memo keeps.
func (c *memo[V]) get(key string, f func(string) (V, error)) (V, error) {
	if v, ok := c.m.Load(key); ok {
		return v.(V), nil
	}
	v, err := f(key)
	if err == nil && len(key) <= c.maxLen && c.n.Add(1) <= c.max {
		c.m.Store(key, v)
	}
	return v, err
}

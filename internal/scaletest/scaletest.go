// Package scaletest holds the measuring helpers that kubeworker's scale
// tests and its benchmark suite share: a transport that counts requests
// and open watches, the API server's own counters, and the heap after a
// collection. It is the project's alone.
package scaletest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/client-go/kubernetes"
)

// Transport counts the requests sent through it and the watch streams
// open now. Wrap a rest.Config with it: conf.Wrap(t.Wrap).
type Transport struct {
	next     http.RoundTripper
	requests atomic.Int64
	open     atomic.Int64
}

// Wrap makes t send through rt; use it once.
func (t *Transport) Wrap(rt http.RoundTripper) http.RoundTripper { t.next = rt; return t }

// Requests is how many requests were sent.
func (t *Transport) Requests() int64 { return t.requests.Load() }

// OpenWatches is how many watch streams are open now.
func (t *Transport) OpenWatches() int64 { return t.open.Load() }

// RoundTrip counts req, and its stream while it is open if it is a watch.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	resp, err := t.next.RoundTrip(req)
	if err != nil || req.URL.Query().Get("watch") != "true" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	t.open.Add(1)
	resp.Body = &countedBody{ReadCloser: resp.Body, done: func() { t.open.Add(-1) }}
	return resp, nil
}

type countedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *countedBody) Close() error {
	b.once.Do(b.done)
	return b.ReadCloser.Close()
}

// Heap collects garbage twice and returns the memory statistics.
func Heap() runtime.MemStats {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms
}

// APIServerWatches sums apiserver_longrunning_requests for namespaced
// watches of jobs and pods, which only a namespaced Watcher makes (the
// controllers, the scheduler and kwok watch the whole cluster).
func APIServerWatches(ctx context.Context, admin kubernetes.Interface) (float64, error) {
	return SumMetric(ctx, admin, "apiserver_longrunning_requests{", func(l map[string]string) bool {
		return l["verb"] == "WATCH" && l["scope"] == "namespace" && (l["resource"] == "jobs" || l["resource"] == "pods")
	})
}

// SumMetric reads the API server's /metrics and sums the samples of the
// metric whose line starts with prefix and whose labels keep accepts.
func SumMetric(ctx context.Context, admin kubernetes.Interface, prefix string, keep func(map[string]string) bool) (float64, error) {
	raw, err := admin.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the API server's metrics: %w", err)
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 || !keep(labels(line[len(prefix):end])) {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
		if err != nil {
			return 0, fmt.Errorf("parse metric %q: %w", line, err)
		}
		sum += v
	}
	return sum, sc.Err()
}

// labels parses `a="x",b="y"`; the label values read here hold no quotes
// or commas.
func labels(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

package metrics

import (
	"net/http"
	"reflect"
	"slices"
)

// WrapTransport returns a wrapper for a client's transport that counts
// every request through it: in rec, by Request and status code, and in
// the RequestCount that the request's context carries, if any. Use it
// with rest.Config.Wrap:
//
//	cfg.Wrap(metrics.WrapTransport(rec))
//
// A request is counted once its answer's headers arrive (a watch or a
// log stream counts when it opens, however long it then lasts), or when
// it fails without an answer; each retry client-go makes is a request of
// its own. A nil rec (or Discard) counts in RequestCounts only.
//
// Wrapping twice: when the transport given is one that WrapTransport
// made, no second layer is added. The wrapper returns a single counting
// transport in its place, over the same inner transport, that records in
// the Recorders of both calls: each request is counted once in its
// RequestCount and once in each distinct Recorder, and a Recorder given
// to both calls counts it once, not twice (the same pointer: a Recorder
// that is not a pointer is never taken for another). That is what
// happens when a config that kubeconfig.Load made (Load wraps its
// transport, with Options.Metrics) is wrapped again with cfg.Wrap, as
// rest.Config.Wrap applies its wrappers one over the other in the order
// given. A counting transport hidden under another wrapper is not seen:
// then both layers count, so the request is counted twice in its
// RequestCount, and twice in a Recorder given to both. Prefer one
// wrapping: pass the Recorder to kubeconfig.Load.
func WrapTransport(rec Recorder) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		if inner, ok := rt.(*countingTransport); ok {
			return &countingTransport{rt: inner.rt, recs: appendRecorder(inner.recs, rec)}
		}
		return &countingTransport{rt: rt, recs: appendRecorder(nil, rec)}
	}
}

// appendRecorder returns recs with rec added, in a new array, unless rec
// records nothing or is in recs already.
func appendRecorder(recs []Recorder, rec Recorder) []Recorder {
	if rec == nil || rec == (Recorder)(Discard{}) || slices.ContainsFunc(recs, func(r Recorder) bool { return samePointer(r, rec) }) {
		return recs
	}
	return append(recs[:len(recs):len(recs)], rec)
}

// samePointer reports whether a and b are one pointer, of one type.
// Values of other kinds are never the same: comparing them could panic.
func samePointer(a, b Recorder) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == reflect.Pointer && va.Type() == vb.Type() && va.Pointer() == vb.Pointer()
}

type countingTransport struct {
	rt   http.RoundTripper
	recs []Recorder
}

// RoundTrip sends req through the wrapped transport and counts it.
func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	r := parseRequest(req.Method, req.URL).request()
	code := 0
	if err == nil && resp != nil {
		code = resp.StatusCode
	}
	for _, rec := range t.recs {
		rec.APIRequest(r, code)
	}
	if c := RequestCountFrom(req.Context()); c != nil {
		c.add(r)
	}
	return resp, err
}

// WrappedRoundTripper returns the wrapped transport, so client-go can
// reach it (k8s.io/apimachinery/pkg/util/net.RoundTripperWrapper).
func (t *countingTransport) WrappedRoundTripper() http.RoundTripper { return t.rt }

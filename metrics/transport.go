package metrics

import "net/http"

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
// its own. A nil rec counts in RequestCounts only. Wrapping a transport
// that WrapTransport made adds rec to it instead, so a request is still
// counted once per Recorder and once in its RequestCount (kubeconfig.Load
// wraps its config already).
func WrapTransport(rec Recorder) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		if inner, ok := rt.(*countingTransport); ok {
			return &countingTransport{rt: inner.rt, recs: appendRecorder(inner.recs, rec)}
		}
		return &countingTransport{rt: rt, recs: appendRecorder(nil, rec)}
	}
}

func appendRecorder(recs []Recorder, rec Recorder) []Recorder {
	if rec == nil || rec == (Recorder)(Discard{}) {
		return recs
	}
	return append(recs[:len(recs):len(recs)], rec)
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

package worker

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Retriable reports whether a failed API call can pass if made again:
// timeouts, 429 Too Many Requests, 5xx, and dropped or refused connections.
// A 4xx answer such as a validation error, a conflict or Forbidden is
// final, and so is the end of the caller's context.
func Retriable(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return false
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err), apierrors.IsUnexpectedServerError(err):
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= 500
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || http2ConnectionClosed(err) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) ||
		utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err) || utilnet.IsProbableEOF(err) ||
		utilnet.IsHTTP2ConnectionLost(err) || (errors.As(err, &netErr) && netErr.Timeout())
}

// http2ConnectionClosed reports the HTTP/2 transport's errors for a
// connection closed under a request, or one that could not be set up again
// after a drop. x/net/http2 does not export them, so their messages are
// matched: the one string match here, a documented last resort.
func http2ConnectionClosed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "http2: client connection force closed") ||
		strings.Contains(msg, "http2: client conn could not be established")
}

// retryBackOff waits a fixed delay plus a uniform jitter, or the server's
// Retry-After when that is longer. It implements backoff.BackOff.
type retryBackOff struct {
	delay, jitter time.Duration
	rand          func(n int64) int64
	retryAfter    time.Duration // set by the operation from the last error
}

func (b *retryBackOff) NextBackOff() time.Duration {
	d := b.delay
	if b.jitter > 0 {
		d += time.Duration(b.rand(int64(b.jitter) + 1))
	}
	return max(d, b.retryAfter)
}

func (b *retryBackOff) Reset() { b.retryAfter = 0 }

// noteRetryAfter records the server's suggested delay, if any.
func (b *retryBackOff) noteRetryAfter(err error) {
	b.retryAfter = 0
	if s, ok := apierrors.SuggestsClientDelay(err); ok && s > 0 {
		b.retryAfter = time.Duration(s) * time.Second
	}
}

func randInt64N(n int64) int64 { return rand.Int64N(n) }

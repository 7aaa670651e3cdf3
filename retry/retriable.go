package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// Retriable reports whether a failed API call can pass if made again:
// timeouts, 429 Too Many Requests, 5xx, and dropped or refused
// connections. A 4xx answer such as a validation error, a conflict or
// Forbidden is final, and so is a cancelled context. context.DeadlineExceeded
// counts as a timeout and is retriable: it is how a request's own timeout
// (rest.Config.Timeout) ends; Policy stops retrying once the caller's own
// context has ended, whatever Retriable says.
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

// MayHaveApplied reports whether a write that failed with err may have
// taken effect all the same, so that the caller must look before writing
// again (a create) or take "not found" as done (a delete). An API answer
// below 500 says the write was refused, and so does a 429 or a refused
// connection; a 5xx (a timeout among them) or a connection that broke
// before any answer (or a context that ended under the request) leaves
// it unknown. A nil err did apply.
func MayHaveApplied(err error) bool {
	if err == nil {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= 500
	}
	return !errors.Is(err, syscall.ECONNREFUSED) && !utilnet.IsConnectionRefused(err)
}

// http2ConnectionClosed reports the HTTP/2 transport's errors for a
// connection closed under a request, or one that could not be set up
// again after a drop. x/net/http2 does not export them, so their messages
// are matched: the one string match here, a documented last resort.
func http2ConnectionClosed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "http2: client connection force closed") ||
		strings.Contains(msg, "http2: client conn could not be established")
}

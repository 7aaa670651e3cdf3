package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var gr = schema.GroupResource{Group: "batch", Resource: "jobs"}

func TestRetriable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{apierrors.NewInternalError(errors.New("x")), true},
		{apierrors.NewServiceUnavailable("x"), true},
		{apierrors.NewTooManyRequests("x", 1), true},
		{apierrors.NewTooManyRequests("x", 0), true},
		{apierrors.NewServerTimeout(gr, "create", 1), true},
		{apierrors.NewTimeoutError("x", 1), true},
		{apierrors.NewGenericServerResponse(502, "POST", gr, "", "bad gateway", 0, true), true},
		{apierrors.NewBadRequest("x"), false},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Job"}, "x", nil), false},
		{apierrors.NewForbidden(gr, "x", errors.New("no")), false},
		{apierrors.NewUnauthorized("x"), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{apierrors.NewConflict(gr, "x", errors.New("c")), false},
		{apierrors.NewAlreadyExists(gr, "x"), false},
		{io.EOF, true},
		{fmt.Errorf("post: %w", io.ErrUnexpectedEOF), true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{errors.New("http2: client connection lost"), true},
		{fmt.Errorf(`Post "https://127.0.0.1/x": %w`, errors.New("http2: client connection force closed via ClientConn.Close")), true},
		{&url.Error{Op: "Get", URL: "https://127.0.0.1/x", Err: errors.New("http2: client conn could not be established")}, true},
		{context.DeadlineExceeded, true},
		{context.Canceled, false},
		{errors.New("something else"), false},
	}
	for _, tt := range tests {
		if got := Retriable(tt.err); got != tt.want {
			t.Errorf("Retriable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestMayHaveApplied(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{apierrors.NewTooManyRequests("x", 1), false},
		{apierrors.NewBadRequest("x"), false},
		{apierrors.NewConflict(gr, "x", errors.New("c")), false},
		{apierrors.NewInternalError(errors.New("x")), true},
		{apierrors.NewTimeoutError("x", 1), true},
		{apierrors.NewServiceUnavailable("x"), true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, false},
		{io.ErrUnexpectedEOF, true},
		{context.DeadlineExceeded, true},
	}
	for _, tt := range tests {
		if got := MayHaveApplied(tt.err); got != tt.want {
			t.Errorf("MayHaveApplied(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

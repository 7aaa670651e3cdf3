package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
)

func TestOptionsDefaultLikeClientGosCoreComponents(t *testing.T) {
	t.Setenv(EnvPodName, "etl-worker-6c8f9d-x2k4p")
	o, err := Options{Namespace: "ns", Worker: "etl"}.complete()
	if err != nil {
		t.Fatal(err)
	}
	if o.LeaseDuration != 15*time.Second || o.RenewDeadline != 10*time.Second || o.RetryPeriod != 2*time.Second {
		t.Errorf("durations %v, %v, %v; want 15s, 10s, 2s", o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.Identity != "etl-worker-6c8f9d-x2k4p" {
		t.Errorf("Identity %q, want $POD_NAME", o.Identity)
	}
	if o.Logger == nil || o.Clock != (clock.RealClock{}) {
		t.Errorf("Logger %v, Clock %v: want a logger and the real clock", o.Logger, o.Clock)
	}
}

func TestOptionsScaleUnsetDurationsFromTheLeaseDuration(t *testing.T) {
	o, err := Options{Namespace: "ns", Worker: "etl", Identity: "a", LeaseDuration: 3 * time.Second}.complete()
	if err != nil {
		t.Fatal(err)
	}
	if o.RenewDeadline != 2*time.Second || o.RetryPeriod != 400*time.Millisecond {
		t.Errorf("RenewDeadline %v, RetryPeriod %v; want 2s and 400ms", o.RenewDeadline, o.RetryPeriod)
	}
}

func TestOptionsIdentityDefaultsToTheHostNameAndARandomSuffix(t *testing.T) {
	t.Setenv(EnvPodName, "")
	os.Unsetenv(EnvPodName)
	a, err := Options{Namespace: "ns", Worker: "etl"}.complete()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Options{Namespace: "ns", Worker: "etl"}.complete()
	host, _ := os.Hostname()
	host = strings.Trim(notSubdomain.ReplaceAllString(strings.ToLower(host), "-"), "-.")
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(host) + `-[a-z0-9]{5}$`).MatchString(a.Identity) {
		t.Errorf("Identity %q, want %q plus a 5-character suffix", a.Identity, host)
	}
	if a.Identity == b.Identity {
		t.Errorf("two defaults are both %q", a.Identity)
	}
}

func TestOptionsNameEveryBadField(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		name   string
		opts   Options
		pod    string
		fields []string // the fields in error, in order
		detail string   // in the message
	}{
		{"namespace and worker are required", Options{Identity: "a"}, "", []string{"Namespace", "Worker"}, "Required value"},
		{"worker must be a DNS label", Options{Namespace: "ns", Worker: "ETL.workers", Identity: "a"}, "", []string{"Worker"}, "RFC 1123 label"},
		{"identity must be a DNS subdomain", Options{Namespace: "ns", Worker: "etl", Identity: "Replica_1"}, "", []string{"Identity"}, "RFC 1123 subdomain"},
		{"a bad $POD_NAME is named", Options{Namespace: "ns", Worker: "etl"}, "Pod_1", []string{"Identity"}, "from $POD_NAME"},
		{"the lease name is too long", Options{Namespace: "ns", Worker: "etl", Identity: long}, "", []string{"Identity"}, "more than 253"},
		{"lease duration is in whole seconds", Options{Namespace: "ns", Worker: "etl", Identity: "a", LeaseDuration: 2500 * time.Millisecond, RenewDeadline: time.Second}, "", []string{"LeaseDuration"}, "whole number of seconds"},
		{"renew deadline is shorter than the lease", Options{Namespace: "ns", Worker: "etl", Identity: "a", LeaseDuration: 2 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: time.Second}, "", []string{"RenewDeadline"}, "shorter than LeaseDuration"},
		{"retry period fits the renew deadline", Options{Namespace: "ns", Worker: "etl", Identity: "a", RetryPeriod: 9 * time.Second}, "", []string{"RetryPeriod"}, "1.2 times"},
		{"negative durations", Options{Namespace: "ns", Worker: "etl", Identity: "a", LeaseDuration: -time.Second, RenewDeadline: -time.Second, RetryPeriod: -time.Second}, "", []string{"LeaseDuration", "RenewDeadline", "RetryPeriod"}, "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvPodName, tt.pod)
			_, err := tt.opts.complete()
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v, want ErrInvalidOptions", err)
			}
			var agg utilerrors.Aggregate
			if !errors.As(err, &agg) {
				t.Fatalf("error %v has no field list", err)
			}
			var fields []string
			for _, e := range agg.Errors() {
				var fe *field.Error
				if errors.As(e, &fe) && !slices.Contains(fields, fe.Field) {
					fields = append(fields, fe.Field)
				}
			}
			if !slices.Equal(fields, tt.fields) {
				t.Errorf("fields %v, want %v (%v)", fields, tt.fields, err)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("error %q does not say %q", err, tt.detail)
			}
		})
	}
}

func TestCanceledRenewalsAreLoggedAtDebug(t *testing.T) {
	var buf bytes.Buffer
	h := canceledAtDebug{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})}
	logger := slog.New(h)
	logger.Error("Error retrieving lease lock", "err", fmt.Errorf("get: %w", context.Canceled))
	if buf.Len() != 0 {
		t.Errorf("a canceled renewal logged above Debug: %s", buf.String())
	}
	logger.Error("Error retrieving lease lock", "err", errors.New("forbidden"))
	if !strings.Contains(buf.String(), "level=ERROR") || !strings.Contains(buf.String(), "forbidden") {
		t.Errorf("another error was not logged as it was: %q", buf.String())
	}
	buf.Reset()
	debug := slog.New(canceledAtDebug{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	debug.Error("Error retrieving lease lock", "err", context.Canceled)
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "context canceled") {
		t.Errorf("a canceled renewal at Debug: %q", buf.String())
	}
}

package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/clock"
)

// LabelWorker labels every member's Lease with the worker's name
// ([Options.Worker]); the members view lists and watches the Leases that
// carry it.
const LabelWorker = "kubeworker.io/worker"

// EnvPodName is the environment variable whose value is the default
// [Options.Identity]: set it from the downward API (fieldRef
// metadata.name).
const EnvPodName = "POD_NAME"

// ErrInvalidOptions is wrapped by the error Join returns for Options it
// cannot use; errors.As to field.ErrorList's aggregate gives each field.
var ErrInvalidOptions = errors.New("fleet: invalid options")

// Options configure a [Join]. Namespace and Worker are required; every
// other field's zero value means the default given in its comment.
type Options struct {
	// Namespace holds the members' Leases. Required.
	Namespace string

	// Worker names the worker whose replicas form the fleet: the value of
	// the [LabelWorker] label and the first part of each Lease's name. It
	// must be a DNS-1123 label (lower-case letters, digits and '-', at
	// most 63 characters). Required.
	Worker string

	// Identity names this replica; its Lease is "<Worker>-<Identity>", so
	// that must be a DNS-1123 subdomain of at most 253 characters.
	// Default: $POD_NAME, else the host name (lower-cased, other
	// characters made '-') plus "-" and five random characters. Two live
	// replicas must not share an Identity: the second one's Join waits
	// until the first one's Lease is gone or expired.
	Identity string

	// LeaseDuration is how long a member counts as live, after another
	// replica last saw its Lease renewed, measured on that replica's
	// clock. It is stored in the Lease in whole seconds, so it must be a
	// whole number of seconds. Default: 15 s.
	LeaseDuration time.Duration

	// RenewDeadline is how long this member tries to renew its Lease
	// before it gives up: it is lost ([Member.Lost]) once RenewDeadline
	// has passed since the start of its last successful renewal. It must
	// be shorter than LeaseDuration; the difference is the margin for
	// clock rates and scheduling delays. Default: two thirds of
	// LeaseDuration (10 s for the default).
	RenewDeadline time.Duration

	// RetryPeriod is the time between renewals, and between tries to
	// take the Lease while Join waits for it. RenewDeadline must exceed
	// 1.2 RetryPeriod (client-go's jitter factor). Default: a fifth of
	// RenewDeadline (2 s for the default).
	RetryPeriod time.Duration

	// Logger receives the membership's log, including client-go's leader
	// election log. Default: discard.
	Logger *slog.Logger

	// Clock tells the time for the members view's expiry and the renewal
	// deadline; tests pass a fake. client-go's leader election itself
	// always uses the real clock. Default: the real clock.
	Clock clock.Clock
}

// identitySource says where the Identity came from, for error messages.
type identitySource string

const (
	identityGiven    identitySource = ""
	identityPodName  identitySource = "$" + EnvPodName
	identityHostname identitySource = "the host name"
)

// complete returns o with its defaults filled in, or every problem with
// it wrapped in ErrInvalidOptions.
func (o Options) complete() (Options, error) {
	source := identityGiven
	if o.Identity == "" {
		o.Identity, source = defaultIdentity()
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = o.LeaseDuration * 2 / 3
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = o.RenewDeadline / 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if errs := o.validate(source); len(errs) > 0 {
		return o, fmt.Errorf("%w: %w", ErrInvalidOptions, errs.ToAggregate())
	}
	return o, nil
}

// validate checks completed options.
func (o Options) validate(source identitySource) field.ErrorList {
	var errs field.ErrorList
	if o.Namespace == "" {
		errs = append(errs, field.Required(field.NewPath("Namespace"), ""))
	} else {
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			errs = append(errs, field.Invalid(field.NewPath("Namespace"), o.Namespace, msg))
		}
	}
	workerOK := false
	if o.Worker == "" {
		errs = append(errs, field.Required(field.NewPath("Worker"), "the worker's name, for the Leases' label and names"))
	} else if msgs := validation.IsDNS1123Label(o.Worker); len(msgs) > 0 {
		for _, msg := range msgs {
			errs = append(errs, field.Invalid(field.NewPath("Worker"), o.Worker, msg))
		}
	} else {
		workerOK = true
	}
	identity := field.NewPath("Identity")
	detail := func(msg string) string {
		if source != identityGiven {
			return fmt.Sprintf("from %s: %s", source, msg)
		}
		return msg
	}
	if msgs := validation.IsDNS1123Subdomain(o.Identity); len(msgs) > 0 {
		for _, msg := range msgs {
			errs = append(errs, field.Invalid(identity, o.Identity, detail(msg)))
		}
	} else if name := leaseName(o.Worker, o.Identity); workerOK && len(name) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, field.Invalid(identity, o.Identity, detail(fmt.Sprintf(
			"too long: the Lease name %q has %d characters, more than %d", name, len(name), validation.DNS1123SubdomainMaxLength))))
	}
	leaseDuration := field.NewPath("LeaseDuration")
	switch {
	case o.LeaseDuration < time.Second:
		errs = append(errs, field.Invalid(leaseDuration, o.LeaseDuration.String(), "must be at least 1s"))
	case o.LeaseDuration%time.Second != 0:
		errs = append(errs, field.Invalid(leaseDuration, o.LeaseDuration.String(), "must be a whole number of seconds: a Lease stores seconds"))
	}
	if o.RenewDeadline <= 0 || o.RenewDeadline >= o.LeaseDuration {
		errs = append(errs, field.Invalid(field.NewPath("RenewDeadline"), o.RenewDeadline.String(),
			fmt.Sprintf("must be positive and shorter than LeaseDuration (%v)", o.LeaseDuration)))
	}
	if o.RetryPeriod <= 0 || float64(o.RenewDeadline) <= 1.2*float64(o.RetryPeriod) {
		errs = append(errs, field.Invalid(field.NewPath("RetryPeriod"), o.RetryPeriod.String(),
			fmt.Sprintf("must be positive and RenewDeadline (%v) must exceed 1.2 times it", o.RenewDeadline)))
	}
	return errs
}

// leaseName is the name of the Lease of worker's replica identity.
func leaseName(worker, identity string) string {
	return worker + "-" + identity
}

var notSubdomain = regexp.MustCompile(`[^a-z0-9.-]+`)

// defaultIdentity returns $POD_NAME, else the host name made a DNS-1123
// subdomain plus a random suffix, and where it came from.
func defaultIdentity() (string, identitySource) {
	if pod := os.Getenv(EnvPodName); pod != "" {
		return pod, identityPodName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "replica"
	}
	host = strings.Trim(notSubdomain.ReplaceAllString(strings.ToLower(host), "-"), "-.")
	if host == "" {
		host = "replica"
	}
	if len(host) > 63 {
		host = strings.TrimRight(host[:63], "-.")
	}
	return host + "-" + utilrand.String(5), identityHostname
}

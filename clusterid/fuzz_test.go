package clusterid_test

import (
	"errors"
	"testing"

	"github.com/kubeworker/kubeworker/clusterid"
)

// FuzzParsePID checks that ParsePID never panics, that every error is a
// *PIDError matching ErrInvalidPID, and that a parsed PID is valid and
// prints back as the very input.
func FuzzParsePID(f *testing.F) {
	for _, s := range []string{
		testUID + ":default:etl-x7k2p", "u:ns:a.b", "", ":", "::", "u::", "::n", "u:ns:n:x",
		"u:NS:n", "a b:ns:n", "\xff:ns:n", "u:ns:" + string(make([]byte, 300)),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := clusterid.ParsePID(s)
		if err != nil {
			var pe *clusterid.PIDError
			if !errors.As(err, &pe) || !errors.Is(err, clusterid.ErrInvalidPID) {
				t.Fatalf("ParsePID(%q): error %v (%T) is not a *PIDError matching ErrInvalidPID", s, err, err)
			}
			if p != (clusterid.PID{}) {
				t.Fatalf("ParsePID(%q) returned %#v with an error", s, p)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("ParsePID(%q).String() = %q", s, p.String())
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePID(%q) returned %#v, which does not validate: %v", s, p, err)
		}
	})
}

// FuzzPIDRoundTrip checks the other direction: any PID that validates
// parses back from its String to itself.
func FuzzPIDRoundTrip(f *testing.F) {
	f.Add(testUID, "default", "etl-x7k2p")
	f.Add("a:b", "ns", "n")
	f.Add("u", "ns", "a:b")
	f.Add("u", "n:s", "n")
	f.Fuzz(func(t *testing.T, uid, namespace, name string) {
		p := clusterid.PID{ClusterUID: uid, Namespace: namespace, Name: name}
		if err := p.Validate(); err != nil {
			if !errors.Is(err, clusterid.ErrInvalidPID) {
				t.Fatalf("Validate(%#v) = %v, not ErrInvalidPID", p, err)
			}
			return
		}
		got, err := clusterid.ParsePID(p.String())
		if err != nil {
			t.Fatalf("ParsePID(%q) of a valid PID: %v", p.String(), err)
		}
		if got != p {
			t.Fatalf("ParsePID(%q) = %#v, want %#v", p.String(), got, p)
		}
	})
}

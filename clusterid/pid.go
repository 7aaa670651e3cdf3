package clusterid

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/validate/content"
)

// maxUIDLen bounds a cluster UID. A UID the API server assigns is a
// 36-character UUID; the bound only keeps a configured one sane.
const maxUIDLen = 253

// ErrInvalidPID is matched, through errors.Is, by every error that says a
// PID is malformed: [ParsePID], [PID.Validate], [PID.UnmarshalText] and
// [Cluster.Kill] given a bad PID. Such an error is the caller's to fix; a
// retry cannot help.
var ErrInvalidPID = errors.New("invalid PID")

// PID identifies one Job in one cluster: the infrastructure PID of a run,
// written "<cluster-uid>:<namespace>:<job-name>" as Prefect writes it.
//
// PID is a comparable value type; its zero value is not a valid PID.
type PID struct {
	// ClusterUID is the UID of the cluster (see [Cluster.UID]). It has no
	// ":", space or control character.
	ClusterUID string
	// Namespace is the Job's namespace, a DNS-1123 label.
	Namespace string
	// Name is the Job's name, a DNS-1123 subdomain.
	Name string
}

// String returns the PID as "<cluster-uid>:<namespace>:<job-name>". For a
// valid PID, ParsePID(p.String()) returns p.
func (p PID) String() string {
	return p.ClusterUID + ":" + p.Namespace + ":" + p.Name
}

// ParsePID parses s as "<cluster-uid>:<namespace>:<job-name>". It splits on
// the first two colons, so the cluster UID cannot hold a colon while
// anything after the second one is the job name, which validation then
// rejects if it holds a colon. Every part must be valid, as
// [PID.Validate] says; the error is a [*PIDError] naming the first bad part
// and why, and it matches [ErrInvalidPID].
func ParsePID(s string) (PID, error) {
	uid, rest, ok1 := strings.Cut(s, ":")
	ns, name, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return PID{}, &PIDError{Input: s, Part: PartWhole, Reason: `has fewer than two ":"; want "<cluster-uid>:<namespace>:<job-name>"`}
	}
	p := PID{ClusterUID: uid, Namespace: ns, Name: name}
	if err := p.check(s); err != nil {
		return PID{}, err
	}
	return p, nil
}

// Validate reports whether p is a valid PID: a cluster UID of at most 253
// printable ASCII characters other than ":" and space, a namespace that is
// a DNS-1123 label and a name that is a DNS-1123 subdomain. The error is a
// [*PIDError] naming the first bad part; it matches [ErrInvalidPID].
func (p PID) Validate() error {
	return p.check(p.String())
}

func (p PID) check(input string) error {
	bad := func(part, reason string) error {
		return &PIDError{Input: input, Part: part, Reason: reason}
	}
	if reason := checkUID(p.ClusterUID); reason != "" {
		return bad(PartClusterUID, reason)
	}
	if p.Namespace == "" {
		return bad(PartNamespace, "is empty")
	}
	if msgs := content.IsDNS1123Label(p.Namespace); len(msgs) > 0 {
		return bad(PartNamespace, fmt.Sprintf("%q is not a DNS-1123 label: %s", p.Namespace, strings.Join(msgs, "; ")))
	}
	if p.Name == "" {
		return bad(PartName, "is empty")
	}
	if msgs := content.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
		return bad(PartName, fmt.Sprintf("%q is not a DNS-1123 subdomain: %s", p.Name, strings.Join(msgs, "; ")))
	}
	return nil
}

// checkUID returns why uid cannot be a cluster UID, or "".
func checkUID(uid string) string {
	if uid == "" {
		return "is empty"
	}
	if len(uid) > maxUIDLen {
		return fmt.Sprintf("is %d bytes long, more than %d", len(uid), maxUIDLen)
	}
	for i := 0; i < len(uid); i++ {
		switch c := uid[i]; {
		case c == ':':
			return fmt.Sprintf("%q holds a colon, which ends it", uid)
		case c <= ' ' || c >= 0x7f:
			return fmt.Sprintf("%q holds %q at byte %d; only printable ASCII other than space is allowed", uid, c, i)
		}
	}
	return ""
}

// MarshalText implements encoding.TextMarshaler, so a PID is stored as its
// String in JSON or YAML. An invalid PID is an error.
func (p PID) MarshalText() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return []byte(p.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with [ParsePID].
func (p *PID) UnmarshalText(text []byte) error {
	parsed, err := ParsePID(string(text))
	if err != nil {
		return err
	}
	*p = parsed
	return nil
}

// Parts of a PID, as named by [PIDError.Part].
const (
	PartWhole      = "pid"
	PartClusterUID = "cluster UID"
	PartNamespace  = "namespace"
	PartName       = "job name"
)

// PIDError says why a PID is malformed. It matches [ErrInvalidPID].
type PIDError struct {
	// Input is the text parsed, or the String of the PID validated.
	Input string
	// Part is the part at fault: PartWhole, PartClusterUID, PartNamespace
	// or PartName.
	Part string
	// Reason says what is wrong with it.
	Reason string
}

func (e *PIDError) Error() string {
	return fmt.Sprintf("clusterid: invalid PID %q: %s %s", e.Input, e.Part, e.Reason)
}

// Is reports whether target is ErrInvalidPID.
func (e *PIDError) Is(target error) bool { return target == ErrInvalidPID }

package jobwatch

import (
	"strconv"
	"strings"
)

// SchedulingFailure breaks down why the scheduler found no node for a
// pod. The scheduler says so only in prose (the PodScheduled condition's
// message, also in its FailedScheduling event), so this is parsed from
// that text, as a documented last resort: the raw message stays in
// Diagnosis.Message, and a part that is not understood goes to Other
// verbatim rather than being lost.
type SchedulingFailure struct {
	// Insufficient lists the resources that nodes lacked, as the
	// scheduler names them ("cpu", "memory", "nvidia.com/gpu").
	Insufficient []string
	// Affinity: nodes did not match the pod's node selector, node
	// affinity, or pod (anti-)affinity.
	Affinity bool
	// Taint: nodes had taints the pod does not tolerate.
	Taint bool
	// Other holds the remaining reasons verbatim, without their node
	// counts ("node(s) had volume node affinity conflict").
	Other []string
}

// parseScheduling parses a scheduler message such as "0/3 nodes are
// available: 1 Insufficient cpu, 2 node(s) had untolerated taint {a: b}.
// preemption: ...". It never fails; unknown text goes to Other.
func parseScheduling(msg string) *SchedulingFailure {
	s := msg
	if i := strings.Index(s, " preemption:"); i >= 0 {
		s = s[:i]
	}
	if _, after, ok := strings.Cut(s, "nodes are available: "); ok {
		s = after
	}
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	f := &SchedulingFailure{}
	for _, part := range splitOutsideBraces(s) {
		part = strings.TrimSpace(part)
		if n, rest, ok := strings.Cut(part, " "); ok {
			if _, err := strconv.Atoi(n); err == nil {
				part = rest
			}
		}
		switch {
		case part == "":
		case strings.HasPrefix(part, "Insufficient "):
			f.Insufficient = append(f.Insufficient, strings.TrimPrefix(part, "Insufficient "))
		case strings.Contains(part, "taint"):
			f.Taint = true
		case strings.Contains(part, "volume"):
			f.Other = append(f.Other, part)
		case strings.Contains(part, "affinity"), strings.Contains(part, "selector"):
			f.Affinity = true
		default:
			f.Other = append(f.Other, part)
		}
	}
	return f
}

// splitOutsideBraces splits s at ", " except inside {...} (taints are
// printed as {key: value}).
func splitOutsideBraces(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth = max(depth-1, 0)
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

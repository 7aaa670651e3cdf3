package jobwatch

import (
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// SchedulingFailure breaks down why the scheduler found no node for a
// pod. The scheduler says so only in prose (the PodScheduled condition's
// message, also in its FailedScheduling event), so this is parsed from
// that text, as a documented last resort: the raw message stays in
// Diagnosis.Message, and a part that is not understood goes to Other
// verbatim rather than being lost.
//
// The message has the form kube-scheduler 1.37 gives it (checked against
// the real scheduler in the end-to-end tests):
//
//	0/5 nodes are available: 1 node(s) didn't match Pod's node affinity/selector,
//	2 Insufficient cpu, 2 node(s) had untolerated taint(s). preemption: ...
//
// Each node is counted once, for the first filter it failed, in the
// scheduler's order: cordoned, taints, node affinity, ports, resources,
// volumes, topology spread, pod affinity. A reason that rules out every
// node before any filter runs (an unbound PersistentVolumeClaim) comes
// without a count.
type SchedulingFailure struct {
	// Nodes is how many nodes the scheduler considered (the 5 of "0/5
	// nodes are available"), or -1 when the message does not say.
	Nodes int
	// Insufficient lists the resources that nodes lacked, as the
	// scheduler names them ("cpu", "memory", "nvidia.com/gpu"; "pods"
	// for "Too many pods"), each with how many nodes lacked it.
	Insufficient []InsufficientResource
	// UntoleratedTaint is how many nodes had taints the pod does not
	// tolerate.
	UntoleratedTaint int
	// Taints are those taints, when they can be known: older schedulers
	// print them ({key: value}, without the effect); kube-scheduler 1.37
	// does not, and Wait then reads the nodes, if its client may list
	// them, and keeps the NoSchedule and NoExecute taints the pod does not
	// tolerate on the nodes its node selector and required node affinity
	// allow.
	Taints []corev1.Taint
	// NodeAffinity is how many nodes did not match the pod's node
	// selector or required node affinity.
	NodeAffinity int
	// PodAffinity is how many nodes were ruled out by pod affinity or
	// anti-affinity, the pod's own or that of pods already there.
	PodAffinity int
	// Claims is the scheduler's word on PersistentVolumeClaims that keep
	// the pod off every node ("pod has unbound immediate
	// PersistentVolumeClaims", `persistentvolumeclaim "data" not found`),
	// or empty.
	Claims string
	// ClaimNames are the claims concerned: the one the scheduler names,
	// else every claim the pod mounts when its spec could be read.
	ClaimNames []string
	// Other holds the remaining reasons verbatim, without their node
	// counts ("node(s) had volume node affinity conflict").
	Other []string

	// nodesRead: Taints were worked out from the nodes the pod asks for.
	nodesRead bool
}

// InsufficientResource is a resource that nodes lacked for a pod.
type InsufficientResource struct {
	// Resource is the resource's name as the scheduler gives it.
	Resource corev1.ResourceName
	// Nodes is how many nodes lacked it.
	Nodes int
}

// cause is the Cause a SchedulingFailure amounts to. Every reason stays
// in the fields; the Cause picks one: claims first (they rule out every
// node), then resources (those nodes passed taints and affinity, so
// freeing room would let the pod run), then taints or node affinity.
// Taints are checked before affinity, so a node refused for a taint may
// not have been wanted anyway (a control-plane node, another team's
// pool): when both are counted, the taints decide only if the nodes the
// pod asks for were read and carry taints it does not tolerate, affinity
// decides if they were read and carry none, and otherwise the Cause is
// CauseUnschedulable, with both counts in the fields.
func (f *SchedulingFailure) cause() Cause {
	taint := f.UntoleratedTaint > 0 || len(f.Taints) > 0
	if f.nodesRead {
		taint = len(f.Taints) > 0
	}
	affinity := f.NodeAffinity > 0
	switch {
	case f.Claims != "":
		return CauseUnboundClaim
	case len(f.Insufficient) > 0:
		return CauseInsufficientResources
	case taint && (!affinity || f.nodesRead):
		return CauseUntoleratedTaint
	case affinity && (!taint || f.nodesRead):
		return CauseNodeAffinity
	}
	return CauseUnschedulable
}

var (
	nodesAvailable = regexp.MustCompile(`^0/(\d+) nodes are available:\s*`)
	claimNotFound  = regexp.MustCompile(`persistentvolumeclaim "([^"]+)" not found`)
	taintInBraces  = regexp.MustCompile(`\{([^{}:]*):\s*([^{}]*)\}`)
)

// parseScheduling parses a scheduler message such as "0/3 nodes are
// available: 1 Insufficient cpu, 2 node(s) had untolerated taint(s).
// preemption: ...". It never fails; unknown text goes to Other.
func parseScheduling(msg string) *SchedulingFailure {
	f := &SchedulingFailure{Nodes: -1}
	s := msg
	if m := nodesAvailable.FindStringSubmatch(s); m != nil {
		f.Nodes, _ = strconv.Atoi(m[1])
		s = s[len(m[0]):]
	}
	// The reasons end with ". "; what follows is the PostFilter plugins'
	// word ("preemption: ...", or "not found" when there was nothing to
	// preempt for).
	if i := indexOutsideBraces(s, ". "); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	for _, part := range splitOutsideBraces(s) {
		part = strings.TrimSpace(part)
		count := 0
		if n, rest, ok := strings.Cut(part, " "); ok {
			if c, err := strconv.Atoi(n); err == nil {
				count, part = c, rest
			}
		}
		lower := strings.ToLower(part)
		switch {
		case part == "":
		case strings.HasPrefix(part, "Insufficient "):
			f.Insufficient = append(f.Insufficient, InsufficientResource{Resource: corev1.ResourceName(strings.TrimPrefix(part, "Insufficient ")), Nodes: count})
		case part == "Too many pods":
			f.Insufficient = append(f.Insufficient, InsufficientResource{Resource: corev1.ResourcePods, Nodes: count})
		case strings.Contains(lower, "persistentvolumeclaim") && !strings.HasPrefix(part, "node(s)"):
			f.Claims = part
			if m := claimNotFound.FindStringSubmatch(part); m != nil {
				f.ClaimNames = []string{m[1]}
			}
		case strings.Contains(lower, "taint"):
			f.UntoleratedTaint += count
			for _, m := range taintInBraces.FindAllStringSubmatch(part, -1) {
				f.Taints = append(f.Taints, corev1.Taint{Key: strings.TrimSpace(m[1]), Value: strings.TrimSpace(m[2])})
			}
		case strings.Contains(lower, "volume"):
			f.Other = append(f.Other, part)
		case strings.Contains(lower, "pod affinity"), strings.Contains(lower, "anti-affinity"):
			f.PodAffinity += count
		case strings.Contains(lower, "affinity"), strings.Contains(lower, "selector"):
			f.NodeAffinity += count
		default:
			f.Other = append(f.Other, part)
		}
	}
	return f
}

// indexOutsideBraces returns the index of the first sep in s that is
// not inside {...}, or -1.
func indexOutsideBraces(s, sep string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth = max(depth-1, 0)
		default:
			if depth == 0 && strings.HasPrefix(s[i:], sep) {
				return i
			}
		}
	}
	return -1
}

// splitOutsideBraces splits s at ", " except inside {...} (taints are
// printed as {key: value} by older schedulers).
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

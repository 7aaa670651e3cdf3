package jobwatch

import (
	"slices"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// untoleratedTaints returns the NoSchedule and NoExecute taints that pod
// does not tolerate on the nodes its node selector and required node
// affinity allow, each once, in node order. Those are the taints the
// scheduler's TaintToleration filter holds against the pod on the nodes
// it asked for; taints of nodes it never wanted are left out.
func untoleratedTaints(pod *corev1.Pod, nodes []corev1.Node) []corev1.Taint {
	var out []corev1.Taint
	for i := range nodes {
		if !nodeAllowed(pod, &nodes[i]) {
			continue
		}
		for _, t := range nodes[i].Spec.Taints {
			if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
				continue
			}
			tolerated := slices.ContainsFunc(pod.Spec.Tolerations, func(tol corev1.Toleration) bool {
				return tol.ToleratesTaint(logr.Discard(), &t, false)
			})
			seen := slices.ContainsFunc(out, func(o corev1.Taint) bool { return o.MatchTaint(&t) && o.Value == t.Value })
			if !tolerated && !seen {
				t.TimeAdded = nil
				out = append(out, t)
			}
		}
	}
	return out
}

// nodeAllowed reports whether node matches pod's node selector and, if
// any, one of the terms of its required node affinity (label expressions
// only; a term with fields alone is taken to match).
func nodeAllowed(pod *corev1.Pod, node *corev1.Node) bool {
	set := labels.Set(node.Labels)
	if !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(set) {
		return false
	}
	a := pod.Spec.Affinity
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	return len(terms) == 0 || slices.ContainsFunc(terms, func(term corev1.NodeSelectorTerm) bool {
		return termMatches(term, set)
	})
}

var nodeSelectorOps = map[corev1.NodeSelectorOperator]selection.Operator{
	corev1.NodeSelectorOpIn:           selection.In,
	corev1.NodeSelectorOpNotIn:        selection.NotIn,
	corev1.NodeSelectorOpExists:       selection.Exists,
	corev1.NodeSelectorOpDoesNotExist: selection.DoesNotExist,
	corev1.NodeSelectorOpGt:           selection.GreaterThan,
	corev1.NodeSelectorOpLt:           selection.LessThan,
}

func termMatches(term corev1.NodeSelectorTerm, set labels.Set) bool {
	for _, e := range term.MatchExpressions {
		op, ok := nodeSelectorOps[e.Operator]
		if !ok {
			return false
		}
		r, err := labels.NewRequirement(e.Key, op, e.Values)
		if err != nil || !r.Matches(set) {
			return false
		}
	}
	return true
}

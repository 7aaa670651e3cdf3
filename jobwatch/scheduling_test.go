package jobwatch

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestParseScheduling(t *testing.T) {
	tests := []struct {
		name  string
		msg   string
		want  SchedulingFailure
		cause Cause
	}{
		{
			"insufficient cpu, as the scheduler says it",
			"0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
			SchedulingFailure{Nodes: 1, Insufficient: []InsufficientResource{{"cpu", 1}}},
			CauseInsufficientResources,
		},
		{
			"several resources, taints and affinity, in 1.37's words, with node counts",
			"0/6 nodes are available: 1 Insufficient memory, 1 Insufficient nvidia.com/gpu, 1 Too many pods, 2 node(s) had untolerated taint(s), 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/6 nodes are available: 6 Preemption is not helpful for scheduling.",
			SchedulingFailure{Nodes: 6, Insufficient: []InsufficientResource{{"memory", 1}, {"nvidia.com/gpu", 1}, {"pods", 1}}, UntoleratedTaint: 2, NodeAffinity: 1},
			CauseInsufficientResources,
		},
		{
			"taints and affinity, the nodes unread: either may be the cause",
			"0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) had untolerated taint(s). preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
			SchedulingFailure{Nodes: 3, UntoleratedTaint: 2, NodeAffinity: 1},
			CauseUnschedulable,
		},
		{
			"taints alone",
			"0/2 nodes are available: 2 node(s) had untolerated taint(s). preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
			SchedulingFailure{Nodes: 2, UntoleratedTaint: 2},
			CauseUntoleratedTaint,
		},
		{
			"an older scheduler prints the taint",
			"0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }.",
			SchedulingFailure{Nodes: 1, UntoleratedTaint: 1, Taints: []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane"}}},
			CauseUntoleratedTaint,
		},
		{
			"a taint with a comma inside braces stays one part",
			"0/1 nodes are available: 1 node(s) had untolerated taint {a: b, c}.",
			SchedulingFailure{Nodes: 1, UntoleratedTaint: 1, Taints: []corev1.Taint{{Key: "a", Value: "b, c"}}},
			CauseUntoleratedTaint,
		},
		{
			"node affinity alone",
			"0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.",
			SchedulingFailure{Nodes: 2, NodeAffinity: 2},
			CauseNodeAffinity,
		},
		{
			"pod anti-affinity is not node affinity",
			"0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.",
			SchedulingFailure{Nodes: 2, PodAffinity: 2},
			CauseUnschedulable,
		},
		{
			"an unbound claim rules out every node, without a count",
			"0/4 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.",
			SchedulingFailure{Nodes: 4, Claims: "pod has unbound immediate PersistentVolumeClaims"},
			CauseUnboundClaim,
		},
		{
			"the PostFilter's word after the reasons is not a reason (as 1.37 says it with nothing to preempt)",
			"0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. not found",
			SchedulingFailure{Nodes: 1, Claims: "pod has unbound immediate PersistentVolumeClaims"},
			CauseUnboundClaim,
		},
		{
			"a resource name with dots stays whole",
			"0/2 nodes are available: 2 Insufficient example.com/fpga. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
			SchedulingFailure{Nodes: 2, Insufficient: []InsufficientResource{{"example.com/fpga", 2}}},
			CauseInsufficientResources,
		},
		{
			"a missing claim is named",
			`0/1 nodes are available: persistentvolumeclaim "data" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.`,
			SchedulingFailure{Nodes: 1, Claims: `persistentvolumeclaim "data" not found`, ClaimNames: []string{"data"}},
			CauseUnboundClaim,
		},
		{
			"a volume conflict is kept verbatim, not taken for affinity or a claim",
			"0/2 nodes are available: 1 node(s) had volume node affinity conflict, 1 node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode already in-use by another pod.",
			SchedulingFailure{Nodes: 2, Other: []string{"node(s) had volume node affinity conflict", "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode already in-use by another pod"}},
			CauseUnschedulable,
		},
		{
			"text of another shape goes to Other",
			"no nodes available to schedule pods",
			SchedulingFailure{Nodes: -1, Other: []string{"no nodes available to schedule pods"}},
			CauseUnschedulable,
		},
		{"an empty message gives nothing", "", SchedulingFailure{Nodes: -1}, CauseUnschedulable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseScheduling(tt.msg)
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("parseScheduling = %+v, want %+v", *got, tt.want)
			}
			if c := got.cause(); c != tt.cause {
				t.Errorf("cause %v, want %v", c, tt.cause)
			}
		})
	}
}

func TestSchedulingCauseOnceTheNodesAreRead(t *testing.T) {
	taint := corev1.Taint{Key: "pool", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	both := SchedulingFailure{UntoleratedTaint: 2, NodeAffinity: 1, nodesRead: true}
	if c := both.cause(); c != CauseNodeAffinity {
		t.Errorf("the nodes the pod asks for have no taint it minds: %v, want NodeAffinity", c)
	}
	both.Taints = []corev1.Taint{taint}
	if c := both.cause(); c != CauseUntoleratedTaint {
		t.Errorf("the nodes the pod asks for have a taint it does not tolerate: %v, want UntoleratedTaint", c)
	}
}

func FuzzParseScheduling(f *testing.F) {
	f.Add("0/1 nodes are available: 1 Insufficient cpu. preemption: x")
	f.Add("{,}}{,")
	f.Add("0/9 nodes are available: persistentvolumeclaim \"\" not found, 3 ")
	f.Fuzz(func(t *testing.T, msg string) {
		parseScheduling(msg).cause() // must not panic
	})
}

func TestUntoleratedTaintsAreThoseOfTheNodesThePodAsksFor(t *testing.T) {
	pool := corev1.Taint{Key: "pool", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	soft := corev1.Taint{Key: "soft", Effect: corev1.TaintEffectPreferNoSchedule}
	other := corev1.Taint{Key: "other", Value: "x", Effect: corev1.TaintEffectNoExecute}
	tolerated := corev1.Taint{Key: "ok", Value: "y", Effect: corev1.TaintEffectNoSchedule}
	node := func(name string, labels map[string]string, taints ...corev1.Taint) corev1.Node {
		n := corev1.Node{Spec: corev1.NodeSpec{Taints: taints}}
		n.Name, n.Labels = name, labels
		return n
	}
	nodes := []corev1.Node{
		node("a", map[string]string{"pool": "gpu"}, pool, soft, tolerated),
		node("b", map[string]string{"pool": "gpu", "zone": "z1"}, pool),
		node("c", map[string]string{"pool": "cpu"}, other),
	}
	pod := testPod("p1", 1)
	pod.Spec.Tolerations = []corev1.Toleration{{Key: "ok", Operator: corev1.TolerationOpEqual, Value: "y", Effect: corev1.TaintEffectNoSchedule}}
	pod.Spec.NodeSelector = map[string]string{"pool": "gpu"}
	if got := untoleratedTaints(pod, nodes); !reflect.DeepEqual(got, []corev1.Taint{pool}) {
		t.Errorf("with a node selector: %v, want only %v", got, pool)
	}
	pod.Spec.NodeSelector = nil
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "pool", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"gpu"}}}}},
	}}}
	if got := untoleratedTaints(pod, nodes); !reflect.DeepEqual(got, []corev1.Taint{other}) {
		t.Errorf("with node affinity: %v, want only %v", got, other)
	}
	pod.Spec.Affinity = nil
	if got := untoleratedTaints(pod, nodes); !reflect.DeepEqual(got, []corev1.Taint{pool, other}) {
		t.Errorf("with no constraint: %v, want %v and %v once each", got, pool, other)
	}
}

func TestCreateCauseReadsTheAPIServersRefusal(t *testing.T) {
	tests := []struct {
		msg     string
		cause   Cause
		lasting bool
		quota   string
		sa      string
	}{
		{`Error creating: pods "run-x-abc" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0`, CauseQuota, true, "no-pods", ""},
		{`Error creating: pods "run-x-abc" is forbidden: status unknown for quota: compute, resources: pods`, CauseQuota, true, "compute", ""},
		{`Error creating: pods "run-x-" is forbidden: error looking up service account ns1/robot: serviceaccount "robot" not found`, CauseServiceAccount, true, "", "robot"},
		{`Error creating: pods "run-x-abc" is forbidden: violates PodSecurity "restricted:latest": privileged (container "main" must not set securityContext.privileged=true)`, CausePodSecurity, true, "", ""},
		{`Error creating: admission webhook "pods.example.com" denied the request: no`, CauseAdmission, true, "", ""},
		{`Error creating: Pod "run-x-abc" is invalid: spec.containers[0].image: Required value`, CauseAdmission, true, "", ""},
		{`Error creating: Timeout: request did not complete within requested timeout`, CauseUnknown, false, "", ""},
	}
	for _, tt := range tests {
		d := &Diagnosis{}
		lasting := createCause(d, tt.msg)
		if d.Cause != tt.cause || lasting != tt.lasting || d.Quota != tt.quota || d.ServiceAccount != tt.sa {
			t.Errorf("%s:\ngot %v lasting %v quota %q sa %q; want %v %v %q %q", tt.msg, d.Cause, lasting, d.Quota, d.ServiceAccount, tt.cause, tt.lasting, tt.quota, tt.sa)
		}
	}
}

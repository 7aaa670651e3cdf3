package jobwatch

import (
	"reflect"
	"testing"
)

func TestParseScheduling(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want SchedulingFailure
	}{
		{
			"insufficient cpu, as the scheduler says it",
			"0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.",
			SchedulingFailure{Insufficient: []string{"cpu"}},
		},
		{
			"several resources, a taint and affinity",
			"0/4 nodes are available: 1 Insufficient memory, 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.",
			SchedulingFailure{Insufficient: []string{"memory", "nvidia.com/gpu"}, Taint: true, Affinity: true},
		},
		{
			"pod anti-affinity",
			"0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.",
			SchedulingFailure{Affinity: true},
		},
		{
			"a volume conflict is kept verbatim, not taken for affinity",
			"0/2 nodes are available: 2 node(s) had volume node affinity conflict.",
			SchedulingFailure{Other: []string{"node(s) had volume node affinity conflict"}},
		},
		{
			"a taint with a comma inside braces stays one part",
			"0/1 nodes are available: 1 node(s) had untolerated taint {a: b, c}.",
			SchedulingFailure{Taint: true},
		},
		{
			"text of another shape goes to Other",
			"no nodes available to schedule pods",
			SchedulingFailure{Other: []string{"no nodes available to schedule pods"}},
		},
		{"an empty message gives nothing", "", SchedulingFailure{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseScheduling(tt.msg); !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("parseScheduling = %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func FuzzParseScheduling(f *testing.F) {
	f.Add("0/1 nodes are available: 1 Insufficient cpu. preemption: x")
	f.Add("{,}}{,")
	f.Fuzz(func(t *testing.T, msg string) {
		parseScheduling(msg) // must not panic
	})
}

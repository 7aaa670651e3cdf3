package jobwatch

import "testing"

func TestCreateCauseTakesARestartingAPIServersRefusalsAsPassing(t *testing.T) {
	cases := []struct {
		msg     string
		lasting bool
		cause   Cause
	}{
		// Right after an API server restart (both seen on the test cluster).
		{`Error creating: pods is forbidden: User "system:serviceaccount:kube-system:job-controller" cannot create resource "pods" in API group "" in the namespace "ns"`, false, CauseUnknown},
		{`Error creating: pods "etl-x7k2p-" is forbidden: not yet ready to handle request`, false, CauseUnknown},
		// The pod's own, which last.
		{`Error creating: pods "etl-x7k2p-" is forbidden: exceeded quota: no-pods, requested: pods=1, used: pods=0, limited: pods=0`, true, CauseQuota},
		{`Error creating: pods "etl-x7k2p-" is forbidden: error looking up service account ns/robot: serviceaccount "robot" not found`, true, CauseServiceAccount},
		{`Error creating: pods "etl-x7k2p-" is forbidden: violates PodSecurity "restricted:latest": privileged`, true, CausePodSecurity},
		{`Error creating: Timeout: request did not complete within requested timeout`, false, CauseUnknown},
	}
	for _, c := range cases {
		d := &Diagnosis{}
		if got := createCause(d, c.msg); got != c.lasting || d.Cause != c.cause {
			t.Errorf("%s: lasting %v, cause %v; want %v, %v", c.msg, got, d.Cause, c.lasting, c.cause)
		}
	}
}

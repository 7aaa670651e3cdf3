package worker

import (
	"context"
	"errors"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// The checks against the API server are in preflight_e2e_test.go.

func TestPreflightNeedsAClientWithACustomCreator(t *testing.T) {
	w, err := New(nil, Options{Parts: Parts{Creator: preflightNopCreator{}, Identity: clusterid.New(nil, clusterid.Options{UID: "u"}), Waiter: preflightNopWaiter{}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Preflight(t.Context(), PreflightOptions{}); err == nil || !strings.Contains(err.Error(), "PreflightOptions.Client") {
		t.Errorf("got %v", err)
	}
}

type preflightNopCreator struct{}

func (preflightNopCreator) Create(context.Context, *batchv1.Job) (*batchv1.Job, error) {
	return nil, errors.New("unused")
}

type preflightNopWaiter struct{}

func (preflightNopWaiter) Wait(context.Context, jobwatch.JobRef, jobwatch.WaitOptions) (jobwatch.Result, error) {
	return jobwatch.Result{}, errors.New("unused")
}

func (preflightNopWaiter) Close() {}

func TestPodSecurityLevelIsReadFromTheWarning(t *testing.T) {
	for warning, want := range map[string]string{
		`would violate PodSecurity "restricted:latest": privileged (container "main" must not set securityContext.privileged=true)`: "restricted",
		`would violate PodSecurity "baseline:v1.30": hostNetwork=true`:                                                              "baseline",
	} {
		if got, ok := podSecurityLevel(warning); !ok || got != want {
			t.Errorf("%s: got %q, %v; want %q", warning, got, ok, want)
		}
	}
	for _, other := range []string{"", "spec.template.spec.containers[0].image: deprecated", `would violate PodSecurity "unterminated`} {
		if got, ok := podSecurityLevel(other); ok {
			t.Errorf("%q taken for a Pod Security warning of level %q", other, got)
		}
	}
}

func TestPreflightReportSaysWhatIsWrong(t *testing.T) {
	rep := &PreflightReport{}
	if !rep.OK() || rep.Err() != nil {
		t.Errorf("an empty report is not OK: %v", rep.Err())
	}
	rep.Warnings, rep.Unchecked = []string{"w"}, []string{"u"}
	if !rep.OK() {
		t.Error("warnings and unchecked items made the report fail")
	}
	rep.Missing = []Permission{{Namespace: "ns", Verb: "get", Resource: "pods", Subresource: "log"}, {Namespace: "ns", Verb: "list", Group: "batch", Resource: "jobs"}}
	rep.Rejections = []Rejection{{Namespace: "ns", Object: "Job", Reason: metav1.StatusReasonForbidden, Message: "exceeded quota: q", Hint: "a ResourceQuota"}}
	uid := errors.New("forbidden")
	rep.ClusterUID = uid
	err := rep.Err()
	for _, want := range []string{"get pods/log in namespace ns", "list jobs.batch in namespace ns", "Job refused in namespace ns: Forbidden: exceeded quota: q (hint: a ResourceQuota)", "cluster UID"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Err() = %v, want it to say %q", err, want)
		}
	}
	if !errors.Is(err, ErrPreflight) || !errors.Is(err, uid) || rep.OK() {
		t.Errorf("Err() = %v does not wrap ErrPreflight and the UID's error", err)
	}
}

package worker

import (
	"bytes"
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// TestRunEnvReferencesResolve: the kubelet expands $(NAME) in an env value
// only when NAME comes earlier in the list. By name, GREETING would come
// before NAME; Prepare orders NAME first, so the run logs "hello world"
// (the local cluster expands $(GREETING) in the scripted log as the
// kubelet expands a container's args).
func TestRunEnvReferencesResolve(t *testing.T) {
	ns := cluster.NewNamespace(t)
	w := newTestWorker(t, ns, map[string]string{clustertest.AnnotationLog: "$(GREETING)"}, Options{})
	var logs bytes.Buffer
	res, err := w.Run(t.Context(), RunSpec{
		ID:     "env-refs",
		Values: map[string]any{"env": map[string]any{"GREETING": "hello $(NAME)", "NAME": "world", "A_FIRST": "a"}},
		Logs:   &logs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != jobwatch.Succeeded {
		t.Errorf("outcome %v, want Succeeded", res.Outcome)
	}
	if got := logs.String(); got != "hello world\n" {
		t.Errorf("log %q, want %q", got, "hello world\n")
	}
	job, err := adminClient(t).BatchV1().Jobs(ns).Get(t.Context(), res.PID.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		names = append(names, e.Name)
	}
	if want := "[A_FIRST NAME GREETING]"; fmt.Sprint(names) != want {
		t.Errorf("env order %v, want %s", names, want)
	}
}

package jobwatch

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// TestE2ECancelled: a running Job marked with AnnotationCancelled, then
// deleted, is Cancelled with the reason, whether Wait sees the deletion
// begin (foreground: the Job stays until its pod is gone) or only the Job
// vanish (background: the Job goes at once); unmarked, it is Deleted.
func TestE2ECancelled(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		mark    bool
		policy  metav1.DeletionPropagation
		outcome Outcome
	}{
		{"marked, deleted foreground", true, metav1.DeletePropagationForeground, Cancelled},
		{"marked, deleted background", true, metav1.DeletePropagationBackground, Cancelled},
		{"unmarked, deleted foreground", false, metav1.DeletePropagationForeground, Deleted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
			job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}))
			ch := asyncWait(newWatcher(t, cluster.Config()), job, WaitOptions{})
			podOf(t, client, job, "Running", isRunning)
			const why = "superseded by a newer run"
			if tt.mark {
				patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, AnnotationCancelled, why)
				if _, err := client.BatchV1().Jobs(ns).Patch(t.Context(), job.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if err := client.BatchV1().Jobs(ns).Delete(t.Context(), job.Name, metav1.DeleteOptions{PropagationPolicy: &tt.policy}); err != nil {
				t.Fatal(err)
			}
			c := <-ch
			if c.err != nil {
				t.Fatal(c.err)
			}
			expect(t, c.res, tt.outcome, -1)
			if tt.mark && (c.res.Reason != ReasonCancelled || c.res.Message != why || c.res.Outcome.Fault() != FaultCaller) {
				t.Errorf("Reason %q, Message %q, Fault %v", c.res.Reason, c.res.Message, c.res.Outcome.Fault())
			}
			if !tt.mark && c.res.Outcome.Fault() != FaultInfrastructure {
				t.Errorf("Fault %v", c.res.Outcome.Fault())
			}
		})
	}
}

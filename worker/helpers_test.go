package worker

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// Helpers shared by this package's tests.

func testJob(runID string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "etl-", Namespace: "jobs", Labels: map[string]string{manifest.LabelRunID: runID}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "run", Image: "busybox"}},
		}}},
	}
}

// fastRetry is a retry policy with short waits for tests; no test
// asserts a wait.
var fastRetry = retry.Policy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}

func adminClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cluster.Config())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// preparedJob renders the default template for a run in namespace ns.
func preparedJob(t *testing.T, ns, runID string, values map[string]any) *batchv1.Job {
	t.Helper()
	vals := map[string]any{"namespace": ns}
	for k, v := range values {
		vals[k] = v
	}
	cfg, err := manifest.Default().Render(vals, manifest.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cfg.Prepare(manifest.Run{ID: runID, Name: "e2e " + runID}, manifest.PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func proxiedClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cluster.ProxyConfig())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// jobsPerRun counts the Jobs in ns by run ID, read directly, not through
// the proxy.
func jobsPerRun(t *testing.T, ns string) map[string]int {
	t.Helper()
	list, err := adminClient(t).BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perRun := map[string]int{}
	for _, j := range list.Items {
		perRun[j.Labels[manifest.LabelRunID]]++
	}
	return perRun
}

func assertOneJobPerRun(t *testing.T, perRun map[string]int, runs int) {
	t.Helper()
	if len(perRun) != runs {
		t.Errorf("%d runs have Jobs, want %d", len(perRun), runs)
	}
	for id, n := range perRun {
		if n != 1 {
			t.Errorf("run %s has %d Jobs, want 1", id, n)
		}
	}
}

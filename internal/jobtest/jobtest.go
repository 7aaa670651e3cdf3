// Package jobtest holds the Job helpers that the tests of jobcreate and
// worker share: a bare Job of a run, the default template's Job for a run,
// clients, and the one-Job-per-run check. It is the project's alone.
package jobtest

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// FastRetry is a retry policy with short waits for tests; no test asserts
// a wait.
var FastRetry = retry.Policy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}

// Job is a minimal Job of run runID in namespace "jobs".
func Job(runID string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "etl-", Namespace: "jobs", Labels: map[string]string{manifest.LabelRunID: runID}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "run", Image: "busybox"}},
		}}},
	}
}

// Client is a clientset for conf, or the test fails.
func Client(t testing.TB, conf *rest.Config) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// Prepared renders the default template with values for a run in
// namespace ns and prepares its Job.
func Prepared(t testing.TB, ns, runID string, values map[string]any) *batchv1.Job {
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

// JobsPerRun counts the Jobs in ns by run ID.
func JobsPerRun(t testing.TB, client kubernetes.Interface, ns string) map[string]int {
	t.Helper()
	list, err := client.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perRun := map[string]int{}
	for _, j := range list.Items {
		perRun[j.Labels[manifest.LabelRunID]]++
	}
	return perRun
}

// AssertOneJobPerRun fails t unless runs runs have exactly one Job each.
func AssertOneJobPerRun(t testing.TB, perRun map[string]int, runs int) {
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

// FateTemplate is the default template with a pod_annotations variable,
// so that each run scripts its own pod's fate with clustertest's
// annotations (exit code, delay, eviction, log, ...).
func FateTemplate() *manifest.Template {
	t := manifest.Default()
	spec := t.JobConfiguration["job_manifest"].(map[string]any)["spec"].(map[string]any)
	spec["template"].(map[string]any)["metadata"] = map[string]any{"annotations": "{{ pod_annotations }}"}
	t.Variables.Properties["pod_annotations"] = &manifest.Property{
		Type: manifest.Types{"object"}, Description: "Annotations of the run's pods.",
		Default: map[string]any{}, HasDefault: true,
	}
	return t
}

package jobwatch

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	tc "github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/manifest"
)

// Job-native semantics on the local cluster: pod failure policies made
// by manifest, native sidecars, suspended (queued) Jobs, pods deleted
// from outside.

// policyJob prepares, with manifest, a Job of one container "main" whose
// pod template carries annotations, with backoffLimit and the pod
// failure policy that PrepareOptions.FailurePolicy makes.
func policyJob(t *testing.T, ns string, backoffLimit int32, annotations map[string]string, policy *manifest.FailurePolicy) *batchv1.Job {
	t.Helper()
	doc := map[string]any{
		"apiVersion": "batch/v1", "kind": "Job",
		"metadata": map[string]any{"generateName": "policy-"},
		"spec": map[string]any{
			"backoffLimit": backoffLimit,
			"template": map[string]any{
				"metadata": map[string]any{"annotations": annotations},
				"spec": map[string]any{
					"restartPolicy": "Never",
					"containers":    []any{map[string]any{"name": "main", "image": "example.com/run:1"}},
				},
			},
		},
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := manifest.LoadJob(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tmpl.Render(nil, manifest.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cfg.Prepare(manifest.Run{ID: ns}, manifest.PrepareOptions{Container: "main", FailurePolicy: policy})
	if err != nil {
		t.Fatal(err)
	}
	if job.Spec.PodFailurePolicy == nil {
		t.Fatal("manifest made no pod failure policy")
	}
	job.Namespace = ns
	return job
}

func annotatePod(t *testing.T, client kubernetes.Interface, pod *corev1.Pod, annotations map[string]string) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Pods(pod.Namespace).Patch(t.Context(), pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate pod %s: %v", pod.Name, err)
	}
}

func jobPods(t *testing.T, client kubernetes.Interface, job *batchv1.Job) []corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods(job.Namespace).List(t.Context(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func TestE2EPodFailurePolicyRetriesAnEvictionWithoutCountingIt(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	// backoffLimit 0: without the policy, the eviction would fail the Job
	// (TestE2EEvicted).
	job := createJob(t, client, ns, policyJob(t, ns, 0, map[string]string{tc.AnnotationDelay: "1h"}, &manifest.FailurePolicy{FailJobOnExitCodes: []int32{42}}))
	rec := &recorder{}
	ch := asyncWait(newWatcher(t, cluster.Config()), job, WaitOptions{Events: rec})
	first := podOf(t, client, job, "Running", isRunning)
	const why = "The node was low on resource: memory."
	annotatePod(t, client, first, map[string]string{tc.AnnotationEvict: why, tc.AnnotationDelay: "0s"})
	second := podOf(t, client, job, "Running, in place of the evicted one", func(p *corev1.Pod) bool { return isRunning(p) && p.UID != first.UID })
	setDelay(t, client, second, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)
	if c.res.Pod != second.Name {
		t.Errorf("Pod %s, want the replacement %s", c.res.Pod, second.Name)
	}
	got, err := client.BatchV1().Jobs(ns).Get(t.Context(), job.Name, metav1.GetOptions{})
	if err != nil || got.Status.Failed != 0 {
		t.Errorf("the Job counts %d failed pods (%v); an ignored disruption counts none", got.Status.Failed, err)
	}
	if !slices.ContainsFunc(rec.all(), func(e Event) bool { return e.Pod == first.Name && e.Phase == corev1.PodFailed && e.Reason == "Evicted" }) {
		t.Errorf("no Failed/Evicted event for the first pod among %+v", rec.all())
	}
}

func TestE2EPodFailurePolicyFailsTheJobAtOnceOnAChosenExitCode(t *testing.T) {
	t.Parallel()
	policy := &manifest.FailurePolicy{FailJobOnExitCodes: []int32{42}}
	t.Run("a chosen exit code: no retry", func(t *testing.T) {
		t.Parallel()
		client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
		job := createJob(t, client, ns, policyJob(t, ns, 3, map[string]string{tc.AnnotationExitCode: "42"}, policy))
		res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
		expect(t, res, Failed, 42)
		if res.JobReason != batchv1.JobReasonPodFailurePolicy || res.Outcome.Fault() != FaultRun {
			t.Errorf("JobReason %q, fault %v", res.JobReason, res.Outcome.Fault())
		}
		if n := len(jobPods(t, client, job)); n != 1 {
			t.Errorf("%d pods, want 1: backoffLimit 3 must not apply", n)
		}
	})
	t.Run("another exit code: retried as usual", func(t *testing.T) {
		t.Parallel()
		client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
		job := createJob(t, client, ns, policyJob(t, ns, 1, map[string]string{tc.AnnotationExitCode: "3"}, policy))
		res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
		expect(t, res, BackoffLimitExceeded, 3)
		if n := len(jobPods(t, client, job)); n != 2 {
			t.Errorf("%d pods, want 2", n)
		}
	})
}

// withNativeSidecar adds an init container "proxy" with restartPolicy
// Always: a native sidecar.
func withNativeSidecar(j *batchv1.Job) {
	always := corev1.ContainerRestartPolicyAlways
	j.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: "example.com/proxy:1", RestartPolicy: &always}}
}

func sidecarRunning(p *corev1.Pod) bool {
	for _, s := range p.Status.InitContainerStatuses {
		if s.Name == "proxy" {
			return s.State.Running != nil
		}
	}
	return false
}

func TestE2ENativeSidecarEndsWithTheRunContainerAndLeavesItsExitCode(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		main     string
		outcome  Outcome
		exitCode int
	}{
		{"the run container fails", "3", Failed, 3},
		{"the run container succeeds", "0", Succeeded, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
			job := createJob(t, client, ns, runJob(map[string]string{
				tc.AnnotationDelay:              "1h",
				tc.AnnotationExitCode + ".main": tt.main,
				// The kubelet stops the sidecar; it exits as SIGTERM makes it.
				tc.AnnotationExitCode + ".proxy": "143",
			}, withNativeSidecar))
			ch := asyncWait(newWatcher(t, cluster.Config()), job, WaitOptions{})
			pod := podOf(t, client, job, "Running beside its sidecar", func(p *corev1.Pod) bool { return isRunning(p) && sidecarRunning(p) })
			setDelay(t, client, pod, "0s") // the run container exits
			c := <-ch
			if c.err != nil {
				t.Fatal(c.err)
			}
			expect(t, c.res, tt.outcome, tt.exitCode)
			if c.res.Container != "main" {
				t.Errorf("Container %q, want main", c.res.Container)
			}
			ended := podOf(t, client, job, "finished", func(p *corev1.Pod) bool { return podFinished(p) })
			if s := containerStatus(ended, "proxy"); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 143 {
				t.Errorf("the sidecar's status %+v, want terminated with 143", s)
			}
		})
	}
}

func TestE2ELegacySidecarListedFirstLeavesTheExitCode(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationExitCode + ".main": "3", tc.AnnotationExitCode + ".proxy": "7"}, func(j *batchv1.Job) {
		spec := &j.Spec.Template.Spec
		spec.Containers = append([]corev1.Container{{Name: "proxy", Image: "example.com/proxy:1"}}, spec.Containers...)
	}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{Container: "main"})
	expect(t, res, Failed, 3)
	if res.Container != "main" {
		t.Errorf("Container %q, want main", res.Container)
	}
}

func TestE2EQueuedJobIsReportedAndItsPodStartTimeoutStartsOnResume(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	// Created suspended, as Kueue creates Jobs; once resumed, its pod can
	// never be scheduled, so the pod start timeout decides.
	job := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) {
		j.Spec.Suspend = new(true)
		j.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1001")}
	}))
	const timeout = 2 * time.Second
	rec := &recorder{}
	ch := asyncWait(newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: timeout, Events: rec})
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, e2eTimeout, true, func(context.Context) (bool, error) {
		return slices.ContainsFunc(rec.all(), func(e Event) bool { return e.Reason == ReasonQueued }), nil
	})
	if err != nil {
		t.Fatalf("no Queued event: %v", err)
	}
	// Twice the pod start timeout passes while the Job is queued.
	time.Sleep(2 * timeout)
	select {
	case c := <-ch:
		t.Fatalf("Wait ended while the Job was suspended: %+v, %v", c.res, c.err)
	default:
	}
	resumed := time.Now()
	if _, err := client.BatchV1().Jobs(ns).Patch(t.Context(), job.Name, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Unschedulable, -1)
	if c.res.FinishedAt.Before(resumed.Add(timeout)) {
		t.Errorf("the pod start timeout ended %v after the resume, before its %v", c.res.FinishedAt.Sub(resumed), timeout)
	}
	// Queued comes first; Resumed and the pod's events come from two
	// streams, in the order Wait sees them (their Times order them).
	events := rec.all()
	resumedAt := slices.IndexFunc(events, func(e Event) bool { return e.Reason == ReasonResumed })
	if len(events) < 3 || events[0].Reason != ReasonQueued || events[0].Pod != "" || events[0].Job != job.Name || resumedAt < 0 ||
		!slices.ContainsFunc(events, func(e Event) bool { return e.Phase == corev1.PodPending && e.Reason == corev1.PodReasonUnschedulable }) {
		t.Errorf("events %+v; want Queued, then Resumed and the pod's Pending", events)
	}
}

func TestE2EPodVanishedWhenItsPodIsDeletedFromOutside(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}))
	ch := asyncWait(newWatcher(t, cluster.Config()), job, WaitOptions{})
	pod := podOf(t, client, job, "Running", isRunning)
	// The fake kubelet removes a pod being deleted at once, without a
	// final status; the Job controller counts it failed (backoffLimit 0).
	if err := client.CoreV1().Pods(ns).Delete(t.Context(), pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, PodVanished, -1)
	if c.res.JobReason != batchv1.JobReasonBackoffLimitExceeded || c.res.Pod != pod.Name || !strings.Contains(c.res.NoExitCode, "deleted") || c.res.Outcome.Fault() != FaultInfrastructure {
		t.Errorf("Result %+v", c.res)
	}
}

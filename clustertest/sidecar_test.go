package clustertest

import (
	"fmt"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func initStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for i := range pod.Status.InitContainerStatuses {
		if pod.Status.InitContainerStatuses[i].Name == name {
			return &pod.Status.InitContainerStatuses[i]
		}
	}
	return nil
}

func TestNativeSidecarRunsBesideTheContainersAndStopsAfterThem(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := newJob(map[string]string{AnnotationDelay: "1h", AnnotationExitCode + ".proxy": "143"})
	always := corev1.ContainerRestartPolicyAlways
	job.Spec.Template.Spec.InitContainers = []corev1.Container{
		{Name: "setup", Image: "example.com/setup:1"},
		{Name: "proxy", Image: "example.com/proxy:1", RestartPolicy: &always},
	}
	job = createJob(t, client, ns, job)
	pod := waitJobPod(t, client, ns, job.Name, "Running", isRunning)
	setup, proxy := initStatus(pod, "setup"), initStatus(pod, "proxy")
	if setup == nil || setup.State.Terminated == nil || setup.State.Terminated.ExitCode != 0 {
		t.Errorf("while running, the init container's status is %+v, want terminated with 0", setup)
	}
	if proxy == nil || proxy.State.Running == nil || !proxy.Ready {
		t.Errorf("while running, the native sidecar's status is %+v, want running and ready", proxy)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"0s"}}}`, AnnotationDelay)
	if _, err := client.CoreV1().Pods(ns).Patch(t.Context(), pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The sidecar's 143 does not fail the pod: the containers decide.
	waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
	done := waitJobPod(t, client, ns, job.Name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if s := initStatus(done, "proxy"); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 143 {
		t.Errorf("after the pod, the native sidecar's status is %+v, want terminated with 143", s)
	}
	if s := initStatus(done, "setup"); s == nil || s.State.Terminated == nil || !s.State.Terminated.FinishedAt.Equal(&setup.State.Terminated.FinishedAt) {
		t.Errorf("the init container's state changed: %+v, was %+v", s, setup)
	}
}

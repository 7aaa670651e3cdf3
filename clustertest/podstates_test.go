package clustertest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestEvictAnnotationEvictsThePod(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	const message = "The node was low on resource: memory."
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationEvict: message}))
	pod := waitJobPod(t, client, ns, job.Name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if pod.Status.Reason != "Evicted" || pod.Status.Message != message {
		t.Errorf("pod status reason %q message %q, want Evicted %q", pod.Status.Reason, pod.Status.Message, message)
	}
	cond := podCondition(pod, corev1.DisruptionTarget)
	if cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "TerminationByKubelet" {
		t.Errorf("DisruptionTarget condition = %+v, want True, TerminationByKubelet", cond)
	}
	if term := terminated(t, pod, "main"); term.ExitCode != 137 {
		t.Errorf("container exit code %d, want 137", term.ExitCode)
	}
	waitEvent(t, client, ns, pod.Name, corev1.EventTypeWarning, "Evicted")
	waitJobCondition(t, client, ns, job.Name, batchv1.JobFailed)
}

func TestOOMKilledIsExitCode137WithReason(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, newJob(map[string]string{AnnotationExitCode: "137", AnnotationReason: "OOMKilled"}))
	pod := waitJobPod(t, client, ns, job.Name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if term := terminated(t, pod, "main"); term.ExitCode != 137 || term.Reason != "OOMKilled" {
		t.Errorf("container terminated %d (%s), want 137 (OOMKilled)", term.ExitCode, term.Reason)
	}
	waitJobCondition(t, client, ns, job.Name, batchv1.JobFailed)
}

func TestImagePullFailureKeepsThePodPending(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	for _, reason := range []string{"ErrImagePull", "ImagePullBackOff"} {
		job := createJob(t, client, ns, newJob(map[string]string{AnnotationImagePull: reason}))
		pod := waitJobPod(t, client, ns, job.Name, "waiting on "+reason, func(p *corev1.Pod) bool {
			return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Waiting != nil
		})
		if got := pod.Status.ContainerStatuses[0].State.Waiting.Reason; got != reason {
			t.Errorf("waiting reason %q, want %q", got, reason)
		}
		if pod.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", pod.Status.Phase)
		}
		// The Job controller counts the pod as active in its own time.
		eventually(t, "the job to count its pod as active", func(ctx context.Context) (bool, error) {
			got, err := client.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return got.Status.Active == 1, fmt.Errorf("active = %d", got.Status.Active)
		})
		if got := waitJobPod(t, client, ns, job.Name, "listed", func(*corev1.Pod) bool { return true }); got.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s once the job counts it, want Pending", got.Status.Phase)
		}
	}
}

func TestImpossibleRequestIsNeverScheduled(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	job := newJob(nil)
	job.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1001")}
	job = createJob(t, client, ns, job)
	pod := waitJobPod(t, client, ns, job.Name, "Unschedulable", func(p *corev1.Pod) bool {
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable
	})
	if pod.Status.Phase != corev1.PodPending || pod.Spec.NodeName != "" {
		t.Errorf("pod phase %s on node %q, want Pending on none", pod.Status.Phase, pod.Spec.NodeName)
	}
	waitEvent(t, client, ns, pod.Name, corev1.EventTypeWarning, "FailedScheduling")
}

func TestAddNodeWithTaintsLabelsAndCapacity(t *testing.T) {
	t.Parallel()
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	taint := corev1.Taint{Key: "test.kubeworker.io/dedicated", Value: ns, Effect: corev1.TaintEffectNoSchedule}
	node, err := cluster.AddNode(t.Context(), NodeOptions{
		Labels:   map[string]string{"test.kubeworker.io/pool": ns},
		Taints:   []corev1.Taint{taint},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourcePods: resource.MustParse("10")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete node: %v", err)
		}
	})
	if got := node.Status.Allocatable[corev1.ResourceCPU]; got.Cmp(resource.MustParse("4")) != 0 {
		t.Errorf("allocatable cpu %s, want 4", got.String())
	}
	if len(node.Status.Addresses) != 1 || node.Status.Addresses[0].Address != loopback {
		t.Errorf("node addresses %v, want only %s", node.Status.Addresses, loopback)
	}
	// A pod that tolerates the taint and selects the node runs there.
	job := newJob(nil)
	spec := &job.Spec.Template.Spec
	spec.NodeSelector = map[string]string{"test.kubeworker.io/pool": ns}
	spec.Tolerations = []corev1.Toleration{{Key: taint.Key, Operator: corev1.TolerationOpEqual, Value: ns, Effect: taint.Effect}}
	spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4")}
	job = createJob(t, client, ns, job)
	waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
	pod := waitJobPod(t, client, ns, job.Name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if pod.Spec.NodeName != node.Name {
		t.Errorf("pod ran on %s, want %s", pod.Spec.NodeName, node.Name)
	}
	// A pod that does not tolerate the taint never lands there.
	plain := newJob(nil)
	plain.Spec.Template.Spec.NodeSelector = map[string]string{"test.kubeworker.io/pool": ns}
	plain = createJob(t, client, ns, plain)
	waitJobPod(t, client, ns, plain.Name, "Unschedulable", func(p *corev1.Pod) bool {
		c := podCondition(p, corev1.PodScheduled)
		return c != nil && c.Reason == corev1.PodReasonUnschedulable
	})
}

func TestFailAttemptsFailTheFirstPodsOfAJob(t *testing.T) {
	t.Parallel()
	// Each case waits out the Job controller's backoff after a failed
	// pod (10 s, then 20 s), so they run side by side.
	t.Run("then succeeds", func(t *testing.T) {
		t.Parallel()
		client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
		// The per-container exit code does not save the first attempt.
		job := newJob(map[string]string{AnnotationFailAttempts: "1", AnnotationExitCode + ".main": "0"})
		job.Spec.BackoffLimit = new(int32(2))
		job = createJob(t, client, ns, job)
		done := waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
		if done.Status.Failed != 1 || done.Status.Succeeded != 1 {
			t.Errorf("status failed %d succeeded %d, want 1 and 1", done.Status.Failed, done.Status.Succeeded)
		}
		pods := jobPods(t, client, ns, job.Name)
		if len(pods) != 2 {
			t.Fatalf("%d pods, want 2", len(pods))
		}
		if term := terminated(t, &pods[0], "main"); pods[0].Status.Phase != corev1.PodFailed || term.ExitCode != 1 || term.Reason != "Error" {
			t.Errorf("first pod %s, exit %d (%s), want Failed, 1 (Error)", pods[0].Status.Phase, term.ExitCode, term.Reason)
		}
		if term := terminated(t, &pods[1], "main"); pods[1].Status.Phase != corev1.PodSucceeded || term.ExitCode != 0 {
			t.Errorf("second pod %s, exit %d, want Succeeded, 0", pods[1].Status.Phase, term.ExitCode)
		}
	})
	t.Run("then exits as scripted", func(t *testing.T) {
		t.Parallel()
		client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
		job := newJob(map[string]string{AnnotationFailAttempts: "2", AnnotationExitCode: "3"})
		job.Spec.BackoffLimit = new(int32(2))
		job = createJob(t, client, ns, job)
		waitJobCondition(t, client, ns, job.Name, batchv1.JobFailed)
		pods := jobPods(t, client, ns, job.Name)
		if len(pods) != 3 {
			t.Fatalf("%d pods, want 3", len(pods))
		}
		for i, want := range []int32{1, 1, 3} {
			if term := terminated(t, &pods[i], "main"); pods[i].Status.Phase != corev1.PodFailed || term.ExitCode != want || term.Reason != "Error" {
				t.Errorf("pod %d: %s, exit %d (%s), want Failed, %d (Error)", i, pods[i].Status.Phase, term.ExitCode, term.Reason, want)
			}
		}
	})
	t.Run("pods started together", func(t *testing.T) {
		t.Parallel()
		// Three pods created at once race through the harness; still
		// exactly one of them is the first attempt.
		client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
		job := newJob(map[string]string{AnnotationFailAttempts: "1"})
		job.Spec.BackoffLimit = new(int32(3))
		job.Spec.Parallelism, job.Spec.Completions = new(int32(3)), new(int32(3))
		job = createJob(t, client, ns, job)
		done := waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
		if done.Status.Failed != 1 || done.Status.Succeeded != 3 {
			t.Errorf("status failed %d succeeded %d, want 1 and 3", done.Status.Failed, done.Status.Succeeded)
		}
	})
}

// jobPods lists a Job's pods, oldest first.
func jobPods(t *testing.T, client kubernetes.Interface, ns, job string) []corev1.Pod {
	t.Helper()
	list, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
	if err != nil {
		t.Fatal(err)
	}
	pods := list.Items
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	return pods
}

package clustertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// waitTimeout bounds every wait; generous, because a busy two-core machine
// is slow, and no test asserts how fast anything happens.
const waitTimeout = 2 * time.Minute

func newClient(t *testing.T, conf *rest.Config) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// newJob returns a Job of one pod (restartPolicy Never, backoffLimit 0,
// container "main") whose pod template carries annotations.
func newJob(annotations map[string]string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "run-"},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "example.com/run:1"}},
				},
			},
		},
	}
}

func createJob(t *testing.T, client kubernetes.Interface, ns string, job *batchv1.Job) *batchv1.Job {
	t.Helper()
	created, err := client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create job: %v", err)
	}
	return created
}

// eventually polls cond until it is true, failing the test with what cond
// last said after waitTimeout.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %v)", what, err, last)
	}
}

// waitJobCondition waits until the Job has condition typ True.
func waitJobCondition(t *testing.T, client kubernetes.Interface, ns, name string, typ batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	eventually(t, fmt.Sprintf("job %s/%s to be %s", ns, name, typ), func(ctx context.Context) (bool, error) {
		var err error
		if job, err = client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		for _, c := range job.Status.Conditions {
			if c.Type == typ && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, fmt.Errorf("conditions %v", job.Status.Conditions)
	})
	return job
}

// waitJobPod waits until the Job has a pod for which ok is true.
func waitJobPod(t *testing.T, client kubernetes.Interface, ns, job, what string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	eventually(t, fmt.Sprintf("a pod of job %s/%s %s", ns, job, what), func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			if ok(&pods.Items[i]) {
				found = &pods.Items[i]
				return true, nil
			}
		}
		return false, fmt.Errorf("%d pods, none %s", len(pods.Items), what)
	})
	return found
}

func isRunning(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

func terminated(t *testing.T, pod *corev1.Pod, container string) *corev1.ContainerStateTerminated {
	t.Helper()
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == container {
			if s.State.Terminated == nil {
				t.Fatalf("container %s of pod %s is not terminated: %+v", container, pod.Name, s.State)
			}
			return s.State.Terminated
		}
	}
	t.Fatalf("pod %s has no status for container %s", pod.Name, container)
	return nil
}

func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == typ {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// waitEvent waits for an event of type and reason about the named object.
func waitEvent(t *testing.T, client kubernetes.Interface, ns, object, typ, reason string) *corev1.Event {
	t.Helper()
	var found *corev1.Event
	eventually(t, fmt.Sprintf("%s event %s for %s", typ, reason, object), func(ctx context.Context) (bool, error) {
		events, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + object})
		if err != nil {
			return false, err
		}
		for i, e := range events.Items {
			if e.Type == typ && e.Reason == reason {
				found = &events.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

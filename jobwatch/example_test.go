package jobwatch_test

import (
	"context"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// Following a Job that another process created, and that has already
// ended. A fake clientset stands in for the cluster here.
func ExampleWatcher_Wait() {
	labels := map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run-1", Namespace: "runs", UID: "job-uid", Labels: labels},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		}},
		Status: batchv1.JobStatus{Failed: 1, Conditions: []batchv1.JobCondition{{
			Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
		}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "run-1-abcde", Namespace: "runs", UID: "pod-uid", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "run-1", UID: "job-uid", Controller: new(true)}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main"}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error"}}},
		}},
	}
	w := jobwatch.New(fake.NewClientset(job, pod), jobwatch.Options{})
	defer w.Close()
	res, err := w.Wait(context.Background(), jobwatch.JobRef{Namespace: "runs", Name: "run-1"}, jobwatch.WaitOptions{Container: "main"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Outcome, res.ExitCode, res.Reason, res.JobReason)
	// Output: Failed 3 Error BackoffLimitExceeded
}

func ExampleOutcome_String() {
	fmt.Println(jobwatch.OOMKilled, jobwatch.BackoffLimitExceeded, jobwatch.Outcome(0))
	// Output: OOMKilled BackoffLimitExceeded Unknown
}

// A Job that failed with BackoffLimitExceeded because its pod was
// OOM-killed: the most specific cause wins, and the Job's own reason is
// kept beside it.
func ExampleClassify() {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run-1", UID: "job-uid"},
		Spec:       batchv1.JobSpec{BackoffLimit: new(int32(0))},
		Status: batchv1.JobStatus{Failed: 1, Conditions: []batchv1.JobCondition{{
			Type: batchv1.JobFailed, Status: corev1.ConditionTrue,
			Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit",
		}}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "run-1-abcde"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "proxy"}, {Name: "main"}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "proxy", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}},
			{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}}},
		}},
	}
	res, finished := jobwatch.Classify(job, []*corev1.Pod{pod}, "main")
	fmt.Println(finished, res.Outcome, res.ExitCode, res.Reason, res.JobReason, res.Container)
	// Output: true OOMKilled 137 OOMKilled BackoffLimitExceeded main
}

package jobwatch

import (
	"context"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// One end-to-end test per Outcome, each on the real local cluster: the
// pod's fate is scripted by clustertest annotations, and the Job
// controller, scheduler and garbage collector are real.

func TestE2ESucceeded(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(nil))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, Succeeded, 0)
	jobAgrees(t, client, job, res, batchv1.JobComplete, "")
	if res.Reason != "Completed" || res.Pod == "" || res.Container != "main" || res.StartedAt.IsZero() || res.FinishedAt.IsZero() {
		t.Errorf("Result %+v", res)
	}
}

func TestE2EFailedWithExitCode(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationExitCode: "3"}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, Failed, 3)
	jobAgrees(t, client, job, res, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	if res.Reason != "Error" {
		t.Errorf("Reason %q", res.Reason)
	}
}

// jobAgrees checks that the Job controller ends the Job as res said:
// with the condition typ (and reason, unless empty) in res, or later when
// the pod decided res (FromPod), so the pod's verdict is the Job's.
func jobAgrees(t *testing.T, client kubernetes.Interface, job *batchv1.Job, res Result, typ batchv1.JobConditionType, reason string) {
	t.Helper()
	if !res.FromPod {
		if reason != "" && res.JobReason != reason {
			t.Errorf("JobReason %q, want %q", res.JobReason, reason)
		}
		return
	}
	if res.JobReason != "" {
		t.Errorf("JobReason %q from the pod", res.JobReason)
	}
	var last batchv1.JobStatus
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = j.Status
		for _, c := range j.Status.Conditions {
			if c.Type == typ && c.Status == corev1.ConditionTrue && (reason == "" || c.Reason == reason) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("the pod decided %v, but the Job did not end %s %s: %v; status %+v", res.Outcome, typ, reason, err, last)
	}
}

func TestE2EBackoffLimitExceeded(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationExitCode: "2"}, func(j *batchv1.Job) {
		j.Spec.BackoffLimit = new(int32(1))
	}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, BackoffLimitExceeded, 2)
	pods, err := client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + job.Name})
	if err != nil || len(pods.Items) != 2 {
		t.Errorf("the Job made %d pods (%v), want 2", len(pods.Items), err)
	}
}

func TestE2EDeadlineExceeded(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}, func(j *batchv1.Job) {
		j.Spec.ActiveDeadlineSeconds = new(int64(3))
	}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, DeadlineExceeded, -1)
	if res.Reason != batchv1.JobReasonDeadlineExceeded {
		t.Errorf("Reason %q", res.Reason)
	}
}

func TestE2EEvicted(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	const why = "The node was low on resource: memory."
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationEvict: why}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, Evicted, 137)
	if res.Reason != "Evicted" || res.Message != why {
		t.Errorf("Reason %q, Message %q", res.Reason, res.Message)
	}
}

func TestE2EOOMKilled(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationExitCode: "137", tc.AnnotationReason: "OOMKilled"}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, OOMKilled, 137)
	jobAgrees(t, client, job, res, batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded)
	if res.Reason != "OOMKilled" {
		t.Errorf("Reason %q", res.Reason)
	}
}

func TestE2EImagePullErrorAtThePodStartTimeout(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationImagePull: "ImagePullBackOff"}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 3 * time.Second})
	expect(t, res, ImagePullError, -1)
	if d := res.Diagnosis; d == nil || d.Cause != CauseImagePull || d.Reason != "ImagePullBackOff" || d.Container != "main" ||
		d.Image != "example.com/run:1" || len(d.Events) == 0 {
		t.Errorf("Diagnosis %+v", res.Diagnosis)
	}
}

func TestE2EUnschedulableAtThePodStartTimeout(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) {
		j.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1001")}
	}))
	// Let the scheduler's event be recorded before the timeout.
	podOf(t, client, job, "unschedulable", func(p *corev1.Pod) bool { return unschedulable(p) != nil })
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 3 * time.Second})
	expect(t, res, Unschedulable, -1)
	d := res.Diagnosis
	if d == nil || d.Reason != corev1.PodReasonUnschedulable || d.Cause != CauseInsufficientResources || d.Scheduling == nil ||
		len(d.Scheduling.Insufficient) != 1 || d.Scheduling.Insufficient[0].Resource != corev1.ResourceCPU {
		t.Fatalf("Diagnosis %+v", d)
	}
	if !slices.ContainsFunc(d.Events, func(e corev1.Event) bool { return e.Reason == "FailedScheduling" }) {
		t.Errorf("no FailedScheduling event among %d", len(d.Events))
	}
	if !slices.ContainsFunc(d.Events, func(e corev1.Event) bool { return e.InvolvedObject.Kind == "Job" && e.Reason == "SuccessfulCreate" }) {
		t.Errorf("the Job's own events are missing")
	}
	if !slices.IsSortedFunc(d.Events, func(a, b corev1.Event) int { return eventTime(a).Compare(eventTime(b)) }) {
		t.Errorf("events are not in time order")
	}
}

func TestE2ECrashLoopAtThePodStartTimeout(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	// The harness puts the annotation's value in the containers' waiting
	// reason and keeps the pod Pending: an init container crash-looping.
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationImagePull: "CrashLoopBackOff"}))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 3 * time.Second})
	expect(t, res, CrashLoop, -1)
	if d := res.Diagnosis; d == nil || d.Reason != "CrashLoopBackOff" {
		t.Errorf("Diagnosis %+v", res.Diagnosis)
	}
}

func TestE2EDeletedFromOutside(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}))
	w := newWatcher(t, cluster.Config())
	ch := asyncWait(w, job, WaitOptions{})
	podOf(t, client, job, "Running", isRunning)
	bg := metav1.DeletePropagationBackground
	if err := client.BatchV1().Jobs(ns).Delete(t.Context(), job.Name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Deleted, -1)
}

func TestE2ETimedOutAtTheDeadline(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h"}))
	start := time.Now()
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{Deadline: 4 * time.Second})
	expect(t, res, TimedOut, -1)
	if time.Since(start) < 4*time.Second {
		t.Errorf("returned after %v, before the deadline", time.Since(start))
	}
	// The Job is left running.
	got, err := client.BatchV1().Jobs(ns).Get(context.Background(), job.Name, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp != nil {
		t.Errorf("the Job was touched: %v", err)
	}
}

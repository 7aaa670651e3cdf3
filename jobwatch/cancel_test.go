package jobwatch

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cancelled marks a test Job as cancelled with reason.
func cancelled(reason string) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		if j.Annotations == nil {
			j.Annotations = map[string]string{}
		}
		j.Annotations[AnnotationCancelled] = reason
	}
}

func TestClassifyCancelled(t *testing.T) {
	backoff := batchv1.JobReasonBackoffLimitExceeded
	tests := []struct {
		name     string
		job      *batchv1.Job
		pods     []*corev1.Pod
		finished bool
		outcome  Outcome
		exitCode int
		reason   string
		message  string
	}{
		{
			name:     "a marked Job being deleted before it ended is Cancelled, with the caller's reason",
			job:      testJob(cancelled("superseded by run 42"), deleting),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: true, outcome: Cancelled, exitCode: -1,
			reason: ReasonCancelled, message: "superseded by run 42",
		},
		{
			name:     "an empty reason gives the default message",
			job:      testJob(cancelled(""), deleting),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: true, outcome: Cancelled, exitCode: -1,
			reason: ReasonCancelled, message: DefaultCancelMessage,
		},
		{
			name:     "a marked Job with no pod yet is Cancelled",
			job:      testJob(cancelled("stop"), deleting),
			finished: true, outcome: Cancelled, exitCode: -1, reason: ReasonCancelled, message: "stop",
		},
		{
			name:     "a marked Job not being deleted yet goes on",
			job:      testJob(cancelled("stop")),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: false, outcome: Unknown, exitCode: -1,
		},
		{
			name:     "an unmarked Job being deleted is Deleted",
			job:      testJob(deleting),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: true, outcome: Deleted, exitCode: -1,
		},
		{
			name: "another annotation does not make a Job Cancelled",
			job: testJob(deleting, func(j *batchv1.Job) {
				j.Annotations = map[string]string{"kubeworker.io/ttl-seconds-after-finished": "0"}
			}),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: true, outcome: Deleted, exitCode: -1,
		},
		{
			name:     "a Job that succeeded before the cancel keeps Succeeded",
			job:      testJob(cancelled("too late"), deleting, withCondition(batchv1.JobComplete, "CompletionsReached")),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 0, "Completed"))},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed",
		},
		{
			name:     "a Job that failed before the cancel keeps Failed and its exit code",
			job:      testJob(cancelled("too late"), deleting, withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 3, "Error"))},
			finished: true, outcome: Failed, exitCode: 3, reason: "Error",
		},
		{
			name:     "a pod that decided the run before the cancel keeps its outcome",
			job:      testJob(cancelled("too late"), deleting, withCondition(batchv1.JobSuccessCriteriaMet, "CompletionsReached")),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 0, "Completed"))},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, finished := Classify(tt.job, tt.pods, "main")
			if finished != tt.finished || r.Outcome != tt.outcome || r.ExitCode != tt.exitCode || r.Reason != tt.reason ||
				(tt.message != "" && r.Message != tt.message) {
				t.Errorf("Classify = %+v, finished %v; want %v, exit code %d, reason %q, message %q, finished %v",
					r, finished, tt.outcome, tt.exitCode, tt.reason, tt.message, tt.finished)
			}
			if tt.outcome == Cancelled && !r.FinishedAt.Equal(tt.job.DeletionTimestamp.Time) {
				t.Errorf("FinishedAt %v, want the deletion's %v", r.FinishedAt, tt.job.DeletionTimestamp.Time)
			}
		})
	}
}

func TestCancelledIsTheCallersFaultAndKeepsTheOtherNumbers(t *testing.T) {
	if Cancelled.String() != "Cancelled" || FaultCaller.String() != "Caller" {
		t.Errorf("names %q, %q", Cancelled.String(), FaultCaller.String())
	}
	if Cancelled.Fault() != FaultCaller || Deleted.Fault() != FaultInfrastructure {
		t.Errorf("Cancelled is %v, Deleted %v", Cancelled.Fault(), Deleted.Fault())
	}
	// Appended: values stored or exported as numbers keep their meaning.
	if Deactivated != 16 || Cancelled != 17 || FaultInfrastructure != 3 || FaultCaller != 4 {
		t.Errorf("Deactivated %d, Cancelled %d, FaultInfrastructure %d, FaultCaller %d", Deactivated, Cancelled, FaultInfrastructure, FaultCaller)
	}
	if Outcome(18).String() != "Outcome(18)" || Fault(5).String() != "Fault(5)" {
		t.Errorf("out of range: %q, %q", Outcome(18), Fault(5))
	}
}

func TestTrimKeepsTheCancelMark(t *testing.T) {
	job := testJob(cancelled("stop"), func(j *batchv1.Job) { j.Annotations["other"] = "dropped" })
	tj := trimmed(t, job).(*batchv1.Job)
	if len(tj.Annotations) != 1 || tj.Annotations[AnnotationCancelled] != "stop" {
		t.Errorf("trimmed Job's annotations %v, want only the cancel mark", tj.Annotations)
	}
	if plain := trimmed(t, testJob()).(*batchv1.Job); plain.Annotations != nil {
		t.Errorf("an unmarked Job keeps annotations %v", plain.Annotations)
	}
}

// TestWaitReportsAMarkedJobThatVanishesAsCancelled: the fake clientset's
// delete removes the Job at once, so Wait learns of it from the DELETE
// event alone, with the Job's last state.
func TestWaitReportsAMarkedJobThatVanishesAsCancelled(t *testing.T) {
	w, client, _ := newFakeWatcher(t, testJob(cancelled("operator request")), testPod("p1", 1, running))
	ch := startWait(w, ref1, WaitOptions{})
	time.Sleep(100 * time.Millisecond)
	if err := client.BatchV1().Jobs("ns").Delete(t.Context(), "run-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	c := await(t, ch)
	if c.err != nil || c.res.Outcome != Cancelled || c.res.Reason != ReasonCancelled || c.res.Message != "operator request" ||
		c.res.ExitCode != -1 || c.res.FinishedAt.IsZero() || c.res.Outcome.Fault() != FaultCaller {
		t.Fatalf("Wait = %+v, %v", c.res, c.err)
	}
}

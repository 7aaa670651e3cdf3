package jobwatch

import (
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestClassify(t *testing.T) {
	backoff := batchv1.JobReasonBackoffLimitExceeded
	tests := []struct {
		name      string
		job       *batchv1.Job
		pods      []*corev1.Pod
		container string

		finished  bool
		outcome   Outcome
		exitCode  int
		reason    string
		jobReason string
		pod       string
		wantCont  string
	}{
		{
			name: "a running Job has not ended", job: testJob(),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: false, outcome: Unknown, exitCode: -1, pod: "p1", wantCont: "main",
		},
		{
			name:     "a Complete Job succeeds with the run container's exit code",
			job:      testJob(withCondition(batchv1.JobComplete, "CompletionsReached")),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 0, "Completed"))},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed", jobReason: "CompletionsReached", pod: "p1", wantCont: "main",
		},
		{
			name: "a Complete Job whose newest pod was an extra one stopped unfinished takes the exit code of the pod that succeeded",
			job:  testJob(withCondition(batchv1.JobComplete, "CompletionsReached")),
			pods: []*corev1.Pod{
				testPod("p1", 1, running, exited("main", 0, "Completed")),
				testPod("p2", 2, running, podDeleted),
			},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed", jobReason: "CompletionsReached", pod: "p1", wantCont: "main",
		},
		{
			name:     "SuccessCriteriaMet ends the Job before Complete",
			job:      testJob(withCondition(batchv1.JobSuccessCriteriaMet, "CompletionsReached")),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 0, "Completed"))},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed", jobReason: "CompletionsReached", pod: "p1", wantCont: "main",
		},
		{
			name:     "a Job with only a completion time succeeds",
			job:      testJob(func(j *batchv1.Job) { j.Status.CompletionTime = new(at(9)) }),
			finished: true, outcome: Succeeded, exitCode: -1,
		},
		{
			name:     "a Failed Job with backoffLimit 0 is Failed with the exit code",
			job:      testJob(withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 3, "Error"))},
			finished: true, outcome: Failed, exitCode: 3, reason: "Error", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name: "a Job that retried and ran out of retries is BackoffLimitExceeded with the last exit code",
			job:  testJob(withBackoffLimit(1), withCounts(0, 2), withCondition(batchv1.JobFailed, backoff)),
			pods: []*corev1.Pod{
				testPod("p1", 1, running, exited("main", 1, "Error")),
				testPod("p2", 5, running, exited("main", 2, "Error")),
			},
			finished: true, outcome: BackoffLimitExceeded, exitCode: 2, reason: backoff, jobReason: backoff, pod: "p2", wantCont: "main",
		},
		{
			name:     "an OOM-killed pod beats BackoffLimitExceeded",
			job:      testJob(withBackoffLimit(2), withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 137, "OOMKilled"))},
			finished: true, outcome: OOMKilled, exitCode: 137, reason: "OOMKilled", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name:     "an evicted pod beats BackoffLimitExceeded",
			job:      testJob(withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, evictedPod)},
			finished: true, outcome: Evicted, exitCode: 137, reason: "Evicted", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name:     "a Job past its activeDeadlineSeconds is DeadlineExceeded",
			job:      testJob(withCondition(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: true, outcome: DeadlineExceeded, exitCode: -1, reason: "DeadlineExceeded", jobReason: "DeadlineExceeded", pod: "p1", wantCont: "main",
		},
		{
			name:     "an unschedulable pod beats DeadlineExceeded",
			job:      testJob(withCondition(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)),
			pods:     []*corev1.Pod{testPod("p1", 1, unschedulablePod)},
			finished: true, outcome: Unschedulable, exitCode: -1, reason: "Unschedulable", jobReason: "DeadlineExceeded", pod: "p1", wantCont: "main",
		},
		{
			name:     "an image pull failure of a sidecar beats DeadlineExceeded",
			job:      testJob(withCondition(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)),
			pods:     []*corev1.Pod{testPod("p1", 1, withContainers("main", "proxy"), waiting("main", "PodInitializing"), waiting("proxy", "ImagePullBackOff"))},
			finished: true, outcome: ImagePullError, exitCode: -1, reason: "ImagePullBackOff", jobReason: "DeadlineExceeded", pod: "p1", wantCont: "main",
		},
		{
			name: "CrashLoopBackOff gives CrashLoop with the last exit code",
			job:  testJob(withCondition(batchv1.JobFailed, backoff)),
			pods: []*corev1.Pod{testPod("p1", 1, running, waiting("main", "CrashLoopBackOff"), func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 4}
			})},
			finished: true, outcome: CrashLoop, exitCode: 4, reason: "CrashLoopBackOff", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name: "more failed pods than backoffLimit ends the Job before its condition",
			job:  testJob(withBackoffLimit(1), withCounts(0, 2)),
			pods: []*corev1.Pod{
				testPod("p1", 1, running, exited("main", 1, "Error")),
				testPod("p2", 5, running, exited("main", 1, "Error")),
			},
			finished: true, outcome: BackoffLimitExceeded, exitCode: 1, reason: backoff, jobReason: backoff, pod: "p2", wantCont: "main",
		},
		{
			name:     "FailureTarget ends the Job before Failed",
			job:      testJob(withCondition(batchv1.JobFailureTarget, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 3, "Error"))},
			finished: true, outcome: Failed, exitCode: 3, reason: "Error", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name:     "a Job being deleted before it ended is Deleted",
			job:      testJob(deleting),
			pods:     []*corev1.Pod{testPod("p1", 1, running)},
			finished: true, outcome: Deleted, exitCode: -1, pod: "p1", wantCont: "main",
		},
		{
			name:     "a Job that ended before its deletion keeps its outcome",
			job:      testJob(deleting, withCondition(batchv1.JobComplete, "CompletionsReached")),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 0, "Completed"))},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed", jobReason: "CompletionsReached", pod: "p1", wantCont: "main",
		},
		{
			name:      "the run container is found by name, not by position, so a sidecar listed first does not count",
			job:       testJob(withCondition(batchv1.JobFailed, backoff)),
			pods:      []*corev1.Pod{testPod("p1", 1, withContainers("proxy", "main"), running, exited("proxy", 0, "Completed"), exited("main", 5, "Error"))},
			container: "main",
			finished:  true, outcome: Failed, exitCode: 5, reason: "Error", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name:     "without a name the run container is the pod's first",
			job:      testJob(withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, withContainers("proxy", "main"), running, exited("proxy", 0, "Completed"), exited("main", 5, "Error"))},
			finished: true, outcome: Failed, exitCode: 0, reason: "Completed", jobReason: backoff, pod: "p1", wantCont: "proxy",
		},
		{
			name: "the newest pod gives the exit code, whatever the order given",
			job:  testJob(withBackoffLimit(1), withCounts(1, 1), withCondition(batchv1.JobComplete, "CompletionsReached")),
			pods: []*corev1.Pod{
				testPod("p2", 5, running, exited("main", 0, "Completed")),
				testPod("p1", 1, running, exited("main", 1, "Error")),
			},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed", jobReason: "CompletionsReached", pod: "p2", wantCont: "main",
		},
		{
			name:     "a pod deleted before its container reported gives exit code -1",
			job:      testJob(withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed })},
			finished: true, outcome: Failed, exitCode: -1, reason: backoff, jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name:     "a Job that failed after its only pod was deleted from outside is PodVanished",
			job:      testJob(withCounts(0, 1), withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, podDeleted)},
			finished: true, outcome: PodVanished, exitCode: -1, reason: backoff, jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name: "a vanished pod after one that failed by itself leaves the failure to the run",
			job:  testJob(withBackoffLimit(1), withCounts(0, 2), withCondition(batchv1.JobFailed, backoff)),
			pods: []*corev1.Pod{
				testPod("p1", 1, running, exited("main", 1, "Error")),
				testPod("p2", 5, running, podDeleted),
			},
			finished: true, outcome: BackoffLimitExceeded, exitCode: -1, reason: backoff, jobReason: backoff, pod: "p2", wantCont: "main",
		},
		{
			name:     "a pod the Job controller deleted past the deadline is DeadlineExceeded, not PodVanished",
			job:      testJob(withCondition(batchv1.JobFailed, batchv1.JobReasonDeadlineExceeded)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, podDeleted)},
			finished: true, outcome: DeadlineExceeded, exitCode: -1, reason: "DeadlineExceeded", jobReason: "DeadlineExceeded", pod: "p1", wantCont: "main",
		},
		{
			name:     "a pod the pod failure policy had deleted is not PodVanished",
			job:      testJob(withCondition(batchv1.JobFailureTarget, batchv1.JobReasonPodFailurePolicy)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, podDeleted)},
			finished: true, outcome: Failed, exitCode: -1, reason: "PodFailurePolicy", jobReason: "PodFailurePolicy", pod: "p1", wantCont: "main",
		},
		{
			name:     "a deleted pod that had exited keeps its exit code",
			job:      testJob(withCondition(batchv1.JobFailed, backoff)),
			pods:     []*corev1.Pod{testPod("p1", 1, running, exited("main", 2, "Error"), podDeleted)},
			finished: true, outcome: Failed, exitCode: 2, reason: "Error", jobReason: backoff, pod: "p1", wantCont: "main",
		},
		{
			name:     "a native sidecar's exit code does not count",
			job:      testJob(withCondition(batchv1.JobComplete, "CompletionsReached")),
			pods:     []*corev1.Pod{testPod("p1", 1, running, nativeSidecar("proxy", 143), exited("main", 0, "Completed"))},
			finished: true, outcome: Succeeded, exitCode: 0, reason: "Completed", jobReason: "CompletionsReached", pod: "p1", wantCont: "main",
		},
		{
			name:     "a failed Job without pods is Failed with exit code -1",
			job:      testJob(withCondition(batchv1.JobFailed, "PodFailurePolicy")),
			finished: true, outcome: Failed, exitCode: -1, reason: "PodFailurePolicy", jobReason: "PodFailurePolicy",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, finished := Classify(tt.job, tt.pods, tt.container)
			if finished != tt.finished || got.Outcome != tt.outcome || got.ExitCode != tt.exitCode {
				t.Errorf("Classify = %v, exit code %d, finished %v; want %v, %d, %v", got.Outcome, got.ExitCode, finished, tt.outcome, tt.exitCode, tt.finished)
			}
			if got.Reason != tt.reason || got.JobReason != tt.jobReason {
				t.Errorf("Reason %q, JobReason %q; want %q, %q", got.Reason, got.JobReason, tt.reason, tt.jobReason)
			}
			if got.Pod != tt.pod || got.Container != tt.wantCont {
				t.Errorf("Pod %q, Container %q; want %q, %q", got.Pod, got.Container, tt.pod, tt.wantCont)
			}
			if tt.finished && got.FinishedAt.IsZero() && tt.outcome != Succeeded {
				t.Errorf("FinishedAt is zero")
			}
			if (got.ExitCode == -1) != (got.NoExitCode != "") {
				t.Errorf("exit code %d with NoExitCode %q", got.ExitCode, got.NoExitCode)
			}
		})
	}
}

func TestClassifyKeepsTheRawMessages(t *testing.T) {
	job := testJob(withCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded))
	got, _ := Classify(job, []*corev1.Pod{testPod("p1", 1, running, evictedPod)}, "")
	if got.Message != "The node was low on resource: memory." || got.JobMessage != "job says BackoffLimitExceeded" {
		t.Errorf("Message %q, JobMessage %q", got.Message, got.JobMessage)
	}
	if !got.StartedAt.Equal(t0) || !got.FinishedAt.Equal(at(10).Time) {
		t.Errorf("StartedAt %v, FinishedAt %v", got.StartedAt, got.FinishedAt)
	}
}

func TestOutcomeStringNamesEveryOutcome(t *testing.T) {
	seen := map[string]bool{}
	for o := Unknown; o <= Cancelled; o++ {
		s := o.String()
		if s == "" || seen[s] || s[0] == 'O' && o != OOMKilled {
			t.Errorf("Outcome %d has name %q", int(o), s)
		}
		seen[s] = true
	}
	if got := Outcome(99).String(); got != "Outcome(99)" {
		t.Errorf("Outcome(99).String() = %q", got)
	}
}

func TestOutcomeFaultChargesEveryOutcome(t *testing.T) {
	want := map[Outcome]Fault{
		Unknown: FaultUnknown, TimedOut: FaultUnknown,
		Succeeded: FaultNone,
		Failed:    FaultRun, BackoffLimitExceeded: FaultRun, DeadlineExceeded: FaultRun, OOMKilled: FaultRun, CrashLoop: FaultRun,
		Evicted: FaultInfrastructure, ImagePullError: FaultInfrastructure, Unschedulable: FaultInfrastructure,
		NeverStarted: FaultInfrastructure, CannotCreatePod: FaultInfrastructure, Deleted: FaultInfrastructure, PodVanished: FaultInfrastructure,
		NotAdmitted: FaultInfrastructure, Deactivated: FaultInfrastructure,
		Cancelled: FaultCaller,
	}
	for o := Unknown; o <= Cancelled; o++ {
		f, ok := want[o]
		if !ok {
			t.Errorf("no attribution decided for %v", o)
			continue
		}
		if got := o.Fault(); got != f {
			t.Errorf("%v.Fault() = %v, want %v", o, got, f)
		}
	}
	if Outcome(99).Fault() != FaultUnknown || Fault(9).String() != "Fault(9)" || FaultInfrastructure.String() != "Infrastructure" {
		t.Errorf("out of range: %v %q", Outcome(99).Fault(), Fault(9).String())
	}
	for c := CauseUnknown; c <= CauseCrashLoop; c++ {
		if s := c.String(); s == "" || s[0] == 'C' && c != CauseCrashLoop {
			t.Errorf("Cause %d has name %q", int(c), s)
		}
	}
}

func TestClassifyLetsThePodDecideWhenTheJobCanEndOneWayOnly(t *testing.T) {
	succeeded := func(p *corev1.Pod) {
		running(p)
		exited("main", 0, "Completed")(p)
		p.Status.Phase = corev1.PodSucceeded
	}
	failed := func(p *corev1.Pod) { running(p); exited("main", 3, "Error")(p); p.Status.Phase = corev1.PodFailed }
	spec := func(f func(*batchv1.JobSpec)) func(*batchv1.Job) { return func(j *batchv1.Job) { f(&j.Spec) } }
	tests := []struct {
		name     string
		job      *batchv1.Job
		pods     []*corev1.Pod
		finished bool
		outcome  Outcome
	}{
		{"a succeeded pod ends a one-pod Job", testJob(), []*corev1.Pod{testPod("p1", 1, succeeded)}, true, Succeeded},
		{"a succeeded pod ends it whatever the backoffLimit", testJob(withBackoffLimit(3)), []*corev1.Pod{testPod("p1", 1, succeeded)}, true, Succeeded},
		{"a failed pod ends a Job with backoffLimit 0", testJob(), []*corev1.Pod{testPod("p1", 1, failed)}, true, Failed},
		{"a failed pod leaves retries to a Job with backoffLimit 1", testJob(withBackoffLimit(1)), []*corev1.Pod{testPod("p1", 1, failed)}, false, Unknown},
		{"a pod failure policy may ignore the failure", testJob(spec(func(s *batchv1.JobSpec) { s.PodFailurePolicy = &batchv1.PodFailurePolicy{} })),
			[]*corev1.Pod{testPod("p1", 1, failed)}, false, Unknown},
		{"an active deadline may pass before the Job controller counts the pod", testJob(spec(func(s *batchv1.JobSpec) { s.ActiveDeadlineSeconds = new(int64(60)) })),
			[]*corev1.Pod{testPod("p1", 1, succeeded)}, false, Unknown},
		{"two completions need two pods", testJob(spec(func(s *batchv1.JobSpec) { s.Completions = new(int32(2)) })),
			[]*corev1.Pod{testPod("p1", 1, succeeded)}, false, Unknown},
		{"parallel pods may still run", testJob(spec(func(s *batchv1.JobSpec) { s.Parallelism = new(int32(2)) })),
			[]*corev1.Pod{testPod("p1", 1, succeeded)}, false, Unknown},
		{"a success policy decides for itself", testJob(spec(func(s *batchv1.JobSpec) { s.SuccessPolicy = &batchv1.SuccessPolicy{} })),
			[]*corev1.Pod{testPod("p1", 1, succeeded)}, false, Unknown},
		{"a Job managed by another controller", testJob(spec(func(s *batchv1.JobSpec) { s.ManagedBy = new("kueue.x-k8s.io/multikueue") })),
			[]*corev1.Pod{testPod("p1", 1, succeeded)}, false, Unknown},
		{"a suspended Job", testJob(suspendedJob(true)), []*corev1.Pod{testPod("p1", 1, succeeded)}, false, Unknown},
		{"a Job being deleted is Deleted", testJob(deleting), []*corev1.Pod{testPod("p1", 1, succeeded)}, true, Deleted},
		{"another pod still running", testJob(), []*corev1.Pod{testPod("p1", 1, running), testPod("p2", 2, succeeded)}, false, Unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, finished := Classify(tt.job, tt.pods, "main")
			if finished != tt.finished || r.Outcome != tt.outcome || r.FromPod != (tt.finished && tt.outcome != Deleted) {
				t.Fatalf("Classify = %+v, finished %v; want %v, finished %v", r, finished, tt.outcome, tt.finished)
			}
			if r.FromPod && r.JobReason != "" {
				t.Errorf("JobReason %q from a pod", r.JobReason)
			}
		})
	}
}

// The trimmed Job keeps what podEnd reads.
func TestTrimKeepsWhatThePodDecisionReads(t *testing.T) {
	j := testJob(func(j *batchv1.Job) {
		j.Spec.Completions, j.Spec.Parallelism = new(int32(2)), new(int32(3))
		j.Spec.ActiveDeadlineSeconds, j.Spec.ManagedBy = new(int64(5)), new("x")
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionIgnore}}}
		j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededCount: new(int32(1))}}}
		j.Spec.BackoffLimitPerIndex = new(int32(1))
	})
	got := trimJob(j)
	s := got.Spec
	if *s.Completions != 2 || *s.Parallelism != 3 || *s.ActiveDeadlineSeconds != 5 || *s.ManagedBy != "x" ||
		s.PodFailurePolicy == nil || s.SuccessPolicy == nil || *s.BackoffLimitPerIndex != 1 {
		t.Fatalf("trimmed spec %+v", s)
	}
}

func TestClassifyTakesTheStartFromThePodWhileTheJobHasNone(t *testing.T) {
	done := func(p *corev1.Pod) {
		running(p)
		exited("main", 0, "Completed")(p)
		p.Status.Phase = corev1.PodSucceeded
	}
	noStart := func(j *batchv1.Job) { j.Status.StartTime = nil }
	res, finished := Classify(testJob(noStart), []*corev1.Pod{testPod("p1", 1, done)}, "")
	if !finished || !res.FromPod || !res.StartedAt.Equal(at(2).Time) {
		t.Errorf("Classify = %+v, %v; want the pod's decision started at its pod's start %v", res, finished, at(2).Time)
	}
	res, _ = Classify(testJob(), []*corev1.Pod{testPod("p1", 1, done)}, "")
	if !res.StartedAt.Equal(t0) {
		t.Errorf("StartedAt %v, want the Job's startTime %v", res.StartedAt, t0)
	}
}

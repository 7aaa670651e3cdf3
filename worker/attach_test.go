package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// ourJob is a Job of the worker named worker for run runID, as the
// default Preparer labels it.
func ourJob(name, worker, runID string) *batchv1.Job {
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7",
		CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour)),
		Labels:            map[string]string{LabelWorker: worker, manifest.LabelRunID: runID, manifest.LabelManagedBy: manifest.ManagedBy},
	}}
}

// fakeJobsWorker is a fake-parts Worker whose JobClient is a fake
// clientset holding jobs.
func fakeJobsWorker(t *testing.T, f *fakeParts, opts Options, jobs ...runtime.Object) (*Worker, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(jobs...)
	opts.Parts.Jobs = cs.BatchV1()
	return fakeWorker(t, f, opts), cs
}

func TestAttachRefusesBadInputWithTypedErrors(t *testing.T) {
	unlabelled := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain"}}
	other := ourJob("others", "other", "r-1")
	cases := []struct {
		name string
		pid  clusterid.PID
		is   error
		says []string
	}{
		{"zero PID", clusterid.PID{}, clusterid.ErrInvalidPID, []string{"cluster UID", "is empty"}},
		{"bad namespace", clusterid.PID{ClusterUID: "uid", Namespace: "Bad_NS", Name: "x"}, clusterid.ErrInvalidPID, []string{"namespace", "Bad_NS"}},
		{"another cluster", clusterid.PID{ClusterUID: "elsewhere", Namespace: "ns", Name: "x"}, clusterid.ErrWrongCluster, []string{`"elsewhere"`, `"uid"`}},
		{"a Job without labels", clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "plain"}, ErrNotManaged,
			[]string{`label "kubeworker.io/worker" is missing`, `label "kubeworker.io/run-id" is missing`, `label "app.kubernetes.io/managed-by" is missing`}},
		{"another worker's Job", clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "others"}, ErrNotManaged,
			[]string{`label "kubeworker.io/worker" is "other", want "kubeworker"`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeParts{}
			w, _ := fakeJobsWorker(t, f, Options{}, unlabelled, other)
			_, err := w.Attach(t.Context(), c.pid, AttachOptions{})
			if !errors.Is(err, c.is) {
				t.Fatalf("got %v, want %v", err, c.is)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(strings.Join(f.calls, " "), "wait") {
				t.Errorf("the Job was followed: %v", f.calls)
			}
		})
	}
	t.Run("errors.As reaches another cluster's details, as from Kill", func(t *testing.T) {
		w, _ := fakeJobsWorker(t, &fakeParts{}, Options{}, unlabelled)
		pid := clusterid.PID{ClusterUID: "elsewhere", Namespace: "ns", Name: "x"}
		_, err := w.Attach(t.Context(), pid, AttachOptions{})
		var wc *clusterid.WrongClusterError
		if !errors.As(err, &wc) || wc.PID != pid || wc.Want != "uid" {
			t.Errorf("got %v, want a *clusterid.WrongClusterError", err)
		}
	})
	t.Run("errors.As reaches the details", func(t *testing.T) {
		w, _ := fakeJobsWorker(t, &fakeParts{}, Options{}, unlabelled)
		_, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "plain"}, AttachOptions{})
		var nm *NotManagedError
		if !errors.As(err, &nm) || len(nm.Problems) != 3 || nm.PID.Name != "plain" {
			t.Errorf("got %#v from %v", nm, err)
		}
		_, err = w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "Bad_Name"}, AttachOptions{})
		var pe *clusterid.PIDError
		if !errors.As(err, &pe) || pe.Part != clusterid.PartName {
			t.Errorf("got %#v from %v", pe, err)
		}
	})
}

func TestAttachToAJobThatIsGoneIsDeletedNotAnError(t *testing.T) {
	f := &fakeParts{}
	w, _ := fakeJobsWorker(t, f, Options{})
	pid := clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "gone"}
	res, err := w.Attach(t.Context(), pid, AttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != jobwatch.Deleted || res.ExitCode != -1 || res.PID != pid || res.NoExitCode == "" {
		t.Errorf("result %+v, want Deleted, -1, the PID and why", res)
	}
}

func TestAttachFollowsTheJobWithTheTemplatesWatchSettings(t *testing.T) {
	f := &fakeParts{}
	job := ourJob("x-1", "kubeworker", "r-1")
	w, _ := fakeJobsWorker(t, f, Options{}, job)
	var recorded []Result
	res, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "x-1"}, AttachOptions{
		OnResult: func(r Result) error { recorded = append(recorded, r); return nil },
	})
	if err != nil {
		t.Fatal(err) // fakeWaiter fails unless the Config's timeouts reach Wait
	}
	if res.Outcome != jobwatch.Succeeded || res.RunID != "r-1" || !res.CreatedAt.Equal(job.CreationTimestamp.Time) {
		t.Errorf("result %+v", res)
	}
	if len(recorded) != 1 || recorded[0].RunID != "r-1" {
		t.Errorf("OnResult got %+v", recorded)
	}
	if got := strings.Join(f.calls, " "); got != "pid prepare wait" {
		t.Errorf("calls: %s", got)
	}
}

func TestAttachAfterCloseIsErrClosed(t *testing.T) {
	w, _ := fakeJobsWorker(t, &fakeParts{}, Options{})
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "x"}, AttachOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v", err)
	}
	if _, err := w.Sweep(t.Context(), func(string) bool { return true }, SweepOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Sweep: got %v", err)
	}
}

func TestWithoutAJobClientAttachListAndSweepSaySo(t *testing.T) {
	w := fakeWorker(t, &fakeParts{}, Options{})
	if _, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "x"}, AttachOptions{}); !errors.Is(err, errNoJobs) {
		t.Errorf("Attach: %v", err)
	}
	if _, err := w.List(t.Context()); !errors.Is(err, errNoJobs) {
		t.Errorf("List: %v", err)
	}
	if _, err := w.Sweep(t.Context(), func(string) bool { return true }, SweepOptions{}); !errors.Is(err, errNoJobs) {
		t.Errorf("Sweep: %v", err)
	}
}

// ttlPreparer prepares a Job whose template asks for a TTL.
type ttlPreparer struct{ ttl int32 }

func (p ttlPreparer) Prepare(_ context.Context, run RunSpec) (*batchv1.Job, *manifest.Config, error) {
	job := testJob(run.ID)
	job.Labels[LabelWorker] = "kubeworker"
	job.Labels[manifest.LabelManagedBy] = manifest.ManagedBy
	job.Spec.TTLSecondsAfterFinished = new(p.ttl)
	return job, &manifest.Config{PodWatchTimeoutSeconds: 7, JobWatchTimeoutSeconds: 9}, nil
}

func TestRetainUntilRecordedStripsTheTTLAndSetsItBackOnceRecorded(t *testing.T) {
	for _, fail := range []bool{false, true} {
		f := &fakeParts{}
		cs := fake.NewClientset()
		w, err := New(nil, Options{
			RetainUntilRecorded: true, Parts: Parts{Preparer: ttlPreparer{ttl: 0}, Creator: NewCreator(cs, CreateOptions{}),
				Store: f, Identity: f, Waiter: fakeWaiter{f}, Jobs: cs.BatchV1()},
		})
		if err != nil {
			t.Fatal(err)
		}
		recordErr := errors.New("the store is down")
		var seen *batchv1.Job
		res, err := w.Run(t.Context(), RunSpec{ID: "r-ttl", OnResult: func(r Result) error {
			seen, _ = cs.BatchV1().Jobs(r.PID.Namespace).Get(t.Context(), r.PID.Name, metav1.GetOptions{})
			if fail {
				return recordErr
			}
			return nil
		}})
		if fail != errors.Is(err, recordErr) || res.Outcome != jobwatch.Succeeded {
			t.Fatalf("OnResult failing %v: got %v, %v", fail, res.Outcome, err)
		}
		if seen == nil || seen.Spec.TTLSecondsAfterFinished != nil || seen.Annotations[AnnotationTTL] != "0" {
			t.Fatalf("while recording, the Job was %+v, want no TTL and the annotation", seen)
		}
		if seen.Annotations[AnnotationSpecHash] != SpecHash(seen) {
			t.Errorf("the spec hash does not cover the Job as created")
		}
		after, err := cs.BatchV1().Jobs(res.PID.Namespace).Get(t.Context(), res.PID.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := after.Spec.TTLSecondsAfterFinished; fail != (got == nil) || (got != nil && *got != 0) {
			t.Errorf("OnResult failing %v: the TTL afterwards is %v", fail, got)
		}
	}
}

func TestReleaseLeavesRunsThatDidNotEndAlone(t *testing.T) {
	for _, outcome := range []jobwatch.Outcome{jobwatch.Deleted, jobwatch.TimedOut} {
		job := ourJob("x-1", "kubeworker", "r-1")
		job.Annotations = map[string]string{AnnotationTTL: "30"}
		w, cs := fakeJobsWorker(t, &fakeParts{}, Options{}, job)
		w.release(t.Context(), w.clusters.own, hold(job), Result{Result: jobwatch.Result{Outcome: outcome}})
		for _, a := range cs.Actions() {
			if a.GetVerb() == "patch" {
				t.Errorf("%v: the Job was patched", outcome)
			}
		}
	}
}

func TestJobPhase(t *testing.T) {
	cond := func(t batchv1.JobConditionType) batchv1.JobStatus {
		return batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: t, Status: corev1.ConditionTrue}}}
	}
	now := metav1.Now()
	cases := []struct {
		name string
		job  batchv1.Job
		want Phase
	}{
		{"new", batchv1.Job{}, PhasePending},
		{"a pod active, not ready", batchv1.Job{Status: batchv1.JobStatus{Active: 1, Ready: new(int32(0))}}, PhasePending},
		{"a pod ready", batchv1.Job{Status: batchv1.JobStatus{Active: 1, Ready: new(int32(1))}}, PhaseRunning},
		{"complete", batchv1.Job{Status: cond(batchv1.JobComplete)}, PhaseSucceeded},
		{"success criteria met", batchv1.Job{Status: cond(batchv1.JobSuccessCriteriaMet)}, PhaseSucceeded},
		{"failed", batchv1.Job{Status: cond(batchv1.JobFailed)}, PhaseFailed},
		{"failure target", batchv1.Job{Status: cond(batchv1.JobFailureTarget)}, PhaseFailed},
		{"suspended", batchv1.Job{Spec: batchv1.JobSpec{Suspend: new(true)}}, PhaseSuspended},
		{"being deleted", batchv1.Job{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: cond(batchv1.JobComplete)}, PhaseDeleting},
	}
	for _, c := range cases {
		if got := jobPhase(&c.job); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestSweepAttachesKnownRunsDeletesOldUnknownOnesAndSparesTheRest(t *testing.T) {
	known := ourJob("known", "kubeworker", "r-known")
	old := ourJob("old", "kubeworker", "r-old")
	young := ourJob("young", "kubeworker", "r-young")
	young.CreationTimestamp = metav1.Now()
	others := ourJob("others", "other", "r-others")
	plain := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain", CreationTimestamp: old.CreationTimestamp}}
	noWorker := ourJob("no-worker", "kubeworker", "r-no-worker")
	delete(noWorker.Labels, LabelWorker)
	w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Namespace: "ns"}, known, old, young, others, plain, noWorker)

	ended := make(chan Result, 1)
	report, err := w.Sweep(t.Context(), func(id string) bool { return id == "r-known" }, SweepOptions{
		Ended: func(run RunInfo, res Result, err error) error {
			if err != nil {
				t.Errorf("run %s: %v", run.RunID, err)
			}
			ended <- res
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-report.Done
	names := func(runs []RunInfo) string {
		var s []string
		for _, r := range runs {
			s = append(s, r.PID.Name)
		}
		return strings.Join(s, ",")
	}
	if a, d, s := names(report.Attached), names(report.Deleted), names(report.Spared); a != "known" || d != "old" || s != "young" {
		t.Errorf("attached %q, deleted %q, spared %q; want known, old, young", a, d, s)
	}
	if res := <-ended; res.RunID != "r-known" || res.Outcome != jobwatch.Succeeded {
		t.Errorf("Ended got %+v", res)
	}
	var deletes []k8stesting.DeleteActionImpl
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			deletes = append(deletes, d)
		}
	}
	if len(deletes) != 1 || deletes[0].Name != "old" {
		t.Fatalf("deletes %+v, want old only", deletes)
	}
	o := deletes[0].DeleteOptions
	if o.PropagationPolicy == nil || *o.PropagationPolicy != metav1.DeletePropagationForeground ||
		o.Preconditions == nil || *o.Preconditions.UID != old.UID || *o.Preconditions.ResourceVersion != old.ResourceVersion {
		t.Errorf("delete options %+v, want foreground, on the listed UID and resourceVersion", o)
	}
	for _, name := range []string{"known", "young", "others", "plain", "no-worker"} {
		if _, err := cs.BatchV1().Jobs("ns").Get(t.Context(), name, metav1.GetOptions{}); err != nil {
			t.Errorf("Job %s: %v", name, err)
		}
	}
}

func TestSweepNeedsKnown(t *testing.T) {
	w, _ := fakeJobsWorker(t, &fakeParts{}, Options{})
	report, err := w.Sweep(t.Context(), nil, SweepOptions{})
	if err == nil || !strings.Contains(err.Error(), "known is nil") {
		t.Errorf("got %v", err)
	}
	<-report.Done
}

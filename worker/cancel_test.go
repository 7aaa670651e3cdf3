package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
	"github.com/kubeworker/kubeworker/worker"
)

// These tests play the API server and the garbage collector with the fake
// clientset: see gcCluster. The real ones are in cancel_e2e_test.go.

const cancelCluster = "cluster-1"

var (
	jobsGVR = batchv1.SchemeGroupVersion.WithResource("jobs")
	podsGVR = corev1.SchemeGroupVersion.WithResource("pods")
)

// annStuck marks a fake pod that stays Terminating until deleted with a
// grace period of 0.
const annStuck = "test/stuck"

// cancelJob is a running Job of the worker "etl" for run runID.
func cancelJob(name, runID string, mods ...func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
		Namespace: "ns", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7",
		Labels: map[string]string{worker.LabelWorker: "etl", manifest.LabelRunID: runID, manifest.LabelManagedBy: manifest.ManagedBy},
	}}
	j.Status.Active = 1
	for _, m := range mods {
		m(j)
	}
	return j
}

// podOf is a running pod of job; stuck ones stay Terminating.
func podOf(job *batchv1.Job, name string, stuck bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: job.Namespace, Name: name, UID: types.UID("uid-" + name),
		Labels: map[string]string{batchv1.ControllerUidLabel: string(job.UID), batchv1.JobNameLabel: job.Name},
	}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if stuck {
		p.Annotations = map[string]string{annStuck: "true"}
	}
	return p
}

func pidOf(job *batchv1.Job) clusterid.PID {
	return clusterid.PID{ClusterUID: cancelCluster, Namespace: job.Namespace, Name: job.Name}
}

// gcCluster is a fake clientset whose deletes behave as the API server's
// and the garbage collector's do for a foreground delete: the Job is
// marked and stays until its pods are gone; its pods are deleted, except
// stuck ones, which stay Terminating until deleted with a grace period
// of 0.
func gcCluster(t *testing.T, objs ...runtime.Object) (*worker.Worker, *fake.Clientset) {
	t.Helper()
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: cancelCluster}})
	cs := fake.NewClientset(objs...)
	tr := cs.Tracker()
	podsOf := func(job *batchv1.Job) []*corev1.Pod {
		list, _ := tr.List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), job.Namespace)
		var out []*corev1.Pod
		for i, p := range list.(*corev1.PodList).Items {
			if p.Labels[batchv1.ControllerUidLabel] == string(job.UID) {
				out = append(out, &list.(*corev1.PodList).Items[i])
			}
		}
		return out
	}
	deletePod := func(p *corev1.Pod, grace *int64) {
		if p.Annotations[annStuck] == "" || (grace != nil && *grace == 0) {
			_ = tr.Delete(podsGVR, p.Namespace, p.Name)
			return
		}
		if p.DeletionTimestamp == nil {
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			_ = tr.Update(podsGVR, p, p.Namespace)
		}
	}
	// collect removes the Jobs being deleted that have no pods left.
	collect := func(ns string) {
		list, _ := tr.List(jobsGVR, batchv1.SchemeGroupVersion.WithKind("Job"), ns)
		for i := range list.(*batchv1.JobList).Items {
			j := &list.(*batchv1.JobList).Items[i]
			if j.DeletionTimestamp != nil && len(podsOf(j)) == 0 {
				_ = tr.Delete(jobsGVR, j.Namespace, j.Name)
			}
		}
	}
	cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteAction)
		obj, err := tr.Get(jobsGVR, d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		job := obj.(*batchv1.Job)
		if pre := d.GetDeleteOptions().Preconditions; pre != nil && pre.UID != nil && *pre.UID != job.UID {
			return true, nil, apierrors.NewConflict(jobsGVR.GroupResource(), job.Name, errors.New("UID precondition failed"))
		}
		if job.DeletionTimestamp == nil {
			job.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			_ = tr.Update(jobsGVR, job, job.Namespace)
		}
		for _, p := range podsOf(job) {
			deletePod(p, nil) // the garbage collector: the pod's own grace
		}
		collect(job.Namespace)
		return true, nil, nil
	})
	cs.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteAction)
		obj, err := tr.Get(podsGVR, d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		deletePod(obj.(*corev1.Pod), d.GetDeleteOptions().GracePeriodSeconds)
		collect(d.GetNamespace())
		return true, nil, nil
	})
	w, err := worker.New(cs, worker.Options{Name: "etl", Namespace: "ns", Retry: retry.Policy{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w, cs
}

// writes returns the verbs and resources of cs's writes, in order, as
// "patch jobs".
func writes(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "patch", "delete", "create", "update":
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource)
		}
	}
	return out
}

func gone(t *testing.T, cs *fake.Clientset, job *batchv1.Job) {
	t.Helper()
	if _, err := cs.Tracker().Get(jobsGVR, job.Namespace, job.Name); !apierrors.IsNotFound(err) {
		t.Errorf("the Job is still there: %v", err)
	}
	list, _ := cs.Tracker().List(podsGVR, corev1.SchemeGroupVersion.WithKind("Pod"), job.Namespace)
	if n := len(list.(*corev1.PodList).Items); n > 0 {
		t.Errorf("%d pods are still there", n)
	}
}

func TestCancelMarksTheJobThenDeletesItForegroundAndWaitsForItsPods(t *testing.T) {
	job := cancelJob("marks", "r-marks")
	w, cs := gcCluster(t, job, podOf(job, "marks-p", false))
	if err := w.Cancel(t.Context(), pidOf(job), "superseded by run 42", worker.CancelOptions{}); err != nil {
		t.Fatal(err)
	}
	gone(t, cs, job)
	if got := strings.Join(writes(cs), ", "); got != "patch jobs, create events, delete jobs" {
		t.Errorf("writes: %s; want the mark, the cancel's Event, then the delete, and no pod deleted by Cancel itself", got)
	}
	for _, a := range cs.Actions() {
		switch a := a.(type) {
		case k8stesting.PatchAction:
			var patch struct {
				Metadata struct {
					ResourceVersion string            `json:"resourceVersion"`
					Annotations     map[string]string `json:"annotations"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal(a.GetPatch(), &patch); err != nil || a.GetPatchType() != types.MergePatchType ||
				patch.Metadata.ResourceVersion != "7" || patch.Metadata.Annotations[jobwatch.AnnotationCancelled] != "superseded by run 42" {
				t.Errorf("patch %s %s (%v)", a.GetPatchType(), a.GetPatch(), err)
			}
		case k8stesting.DeleteAction:
			o := a.GetDeleteOptions()
			if o.PropagationPolicy == nil || *o.PropagationPolicy != metav1.DeletePropagationForeground ||
				o.Preconditions == nil || *o.Preconditions.UID != job.UID || o.GracePeriodSeconds != nil {
				t.Errorf("delete options %+v", o)
			}
		}
	}
}

func TestCancelWithAGraceDeletesThePodsWithItToo(t *testing.T) {
	job := cancelJob("grace", "r-grace")
	w, cs := gcCluster(t, job, podOf(job, "grace-p", true))
	grace := 1500 * time.Millisecond
	if err := w.Cancel(t.Context(), pidOf(job), "", worker.CancelOptions{Grace: &grace, Force: true, ForceAfter: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	gone(t, cs, job)
	var graces []string
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok {
			g := "nil"
			if s := d.GetDeleteOptions().GracePeriodSeconds; s != nil {
				g = fmt.Sprint(*s)
			}
			graces = append(graces, d.GetResource().Resource+"="+g)
		}
	}
	// 1.5 s rounds up to 2; Force deletes the stuck pod after it.
	if want := []string{"jobs=2", "pods=2", "pods=0"}; !slices.Equal(graces, want) {
		t.Errorf("deletes %v, want %v", graces, want)
	}
}

func TestCancelWhoseContextEndsSaysWhatIsLeft(t *testing.T) {
	job := cancelJob("stuck", "r-stuck")
	w, cs := gcCluster(t, job, podOf(job, "stuck-p", true))
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	err := w.Cancel(ctx, pidOf(job), "stop", worker.CancelOptions{})
	var left *worker.CancelIncompleteError
	if !errors.As(err, &left) || !errors.Is(err, worker.ErrCancelIncomplete) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a *CancelIncompleteError from the deadline", err)
	}
	if left.Job != "stuck" || !slices.Equal(left.Pods, []string{"stuck-p (Terminating)"}) || left.RunID != "r-stuck" || left.PID != pidOf(job) {
		t.Errorf("left %+v", left)
	}
	for _, s := range []string{"Job stuck (deleting)", "stuck-p (Terminating)", "r-stuck", "deadline exceeded"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%q does not say %q", err, s)
		}
	}
	// The cancel goes on: forcing the pod out ends it, and the next
	// Cancel sees it gone.
	if err := cs.CoreV1().Pods("ns").Delete(t.Context(), "stuck-p", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if err := w.Cancel(t.Context(), pidOf(job), "stop", worker.CancelOptions{}); err != nil {
		t.Errorf("a Cancel once it is gone: %v", err)
	}
}

func TestCancelWithForceDeletesThePodsLeftPastTheirGrace(t *testing.T) {
	job := cancelJob("force", "r-force", func(j *batchv1.Job) {
		j.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(0))
	})
	w, cs := gcCluster(t, job, podOf(job, "force-p", true))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := w.Cancel(ctx, pidOf(job), "stop", worker.CancelOptions{Force: true, ForceAfter: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	gone(t, cs, job)
}

func TestCancelIsIdempotent(t *testing.T) {
	t.Run("a second Cancel once the Job is gone is nil and writes nothing", func(t *testing.T) {
		job := cancelJob("twice", "r-twice")
		w, cs := gcCluster(t, job, podOf(job, "twice-p", false))
		for i := range 2 {
			if err := w.Cancel(t.Context(), pidOf(job), "stop", worker.CancelOptions{}); err != nil {
				t.Fatalf("Cancel %d: %v", i+1, err)
			}
		}
		if got := writes(cs); len(got) != 3 {
			t.Errorf("writes %v, want only the first Cancel's three", got)
		}
		// The run is known as cancelled too, by its ID.
		if err := w.CancelRun(t.Context(), "r-twice", "", worker.CancelOptions{}); err != nil {
			t.Errorf("CancelRun of the run cancelled: %v", err)
		}
		// Another Worker cannot tell it from a run that never was.
		other, _ := gcCluster(t)
		if err := other.CancelRun(t.Context(), "r-twice", "", worker.CancelOptions{}); !errors.Is(err, clusterid.ErrNotFound) {
			t.Errorf("CancelRun of the run cancelled by another Worker: %v, want ErrNotFound", err)
		}
	})
	t.Run("a Job already marked keeps the first reason", func(t *testing.T) {
		job := cancelJob("marked", "r-marked", func(j *batchv1.Job) {
			j.Annotations = map[string]string{jobwatch.AnnotationCancelled: "first"}
		})
		w, cs := gcCluster(t, job)
		if err := w.Cancel(t.Context(), pidOf(job), "second", worker.CancelOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(writes(cs), ", "); got != "delete jobs" {
			t.Errorf("writes: %s, want the delete alone", got)
		}
	})
	t.Run("a Job marked between the read and the mark keeps the first reason", func(t *testing.T) {
		job := cancelJob("race", "r-race")
		w, cs := gcCluster(t, job)
		var final string
		raced := false
		cs.PrependReactor("patch", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if raced {
				return false, nil, nil
			}
			raced = true
			obj, _ := cs.Tracker().Get(jobsGVR, "ns", "race")
			j := obj.(*batchv1.Job)
			j.Annotations = map[string]string{jobwatch.AnnotationCancelled: "first"}
			j.ResourceVersion = "8"
			_ = cs.Tracker().Update(jobsGVR, j, "ns")
			return true, nil, apierrors.NewConflict(jobsGVR.GroupResource(), "race", errors.New("changed"))
		})
		cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			obj, _ := cs.Tracker().Get(jobsGVR, "ns", "race")
			final = obj.(*batchv1.Job).Annotations[jobwatch.AnnotationCancelled]
			return false, nil, nil
		})
		if err := w.Cancel(t.Context(), pidOf(job), "second", worker.CancelOptions{}); err != nil {
			t.Fatal(err)
		}
		if final != "first" {
			t.Errorf("the Job was deleted marked %q, want the first reason", final)
		}
		if got := strings.Join(writes(cs), ", "); got != "patch jobs, create events, delete jobs" {
			t.Errorf("writes: %s, want one refused mark, the cancel's Event, then the delete", got)
		}
	})
}

func TestCancelOfAFinishedRunChangesNothing(t *testing.T) {
	for _, cond := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed, batchv1.JobFailureTarget} {
		t.Run(string(cond), func(t *testing.T) {
			job := cancelJob("done-"+strings.ToLower(string(cond)), "r-done", func(j *batchv1.Job) {
				j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
			})
			w, cs := gcCluster(t, job)
			if err := w.Cancel(t.Context(), pidOf(job), "too late", worker.CancelOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := writes(cs); len(got) > 0 {
				t.Errorf("writes %v, want none", got)
			}
		})
	}
}

func TestCancelRefusesBadInputWithTypedErrors(t *testing.T) {
	other := cancelJob("others", "r-o", func(j *batchv1.Job) { j.Labels[worker.LabelWorker] = "reports" })
	negative := -time.Second
	cases := []struct {
		name string
		pid  clusterid.PID
		opts worker.CancelOptions
		is   error
	}{
		{"a Job that does not exist", clusterid.PID{ClusterUID: cancelCluster, Namespace: "ns", Name: "never"}, worker.CancelOptions{}, clusterid.ErrNotFound},
		{"another worker's Job", pidOf(other), worker.CancelOptions{}, worker.ErrNotManaged},
		{"a bad PID", clusterid.PID{ClusterUID: cancelCluster, Namespace: "Bad_NS", Name: "x"}, worker.CancelOptions{}, clusterid.ErrInvalidPID},
		{"another cluster", clusterid.PID{ClusterUID: "elsewhere", Namespace: "ns", Name: "x"}, worker.CancelOptions{}, clusterid.ErrWrongCluster},
		{"a negative grace", pidOf(other), worker.CancelOptions{Grace: &negative}, nil},
		{"a negative ForceAfter", pidOf(other), worker.CancelOptions{ForceAfter: -1}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, cs := gcCluster(t, other)
			err := w.Cancel(t.Context(), c.pid, "", c.opts)
			if err == nil || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("got %v, want %v", err, c.is)
			}
			if c.is == clusterid.ErrNotFound && !apierrors.IsNotFound(err) {
				t.Errorf("%v does not wrap the API's 404", err)
			}
			if got := writes(cs); len(got) > 0 {
				t.Errorf("writes %v, want none", got)
			}
		})
	}
}

func TestCancelRunCancelsEveryJobOfTheRun(t *testing.T) {
	a, b := cancelJob("run-a", "r-two"), cancelJob("run-b", "r-two")
	keep := cancelJob("run-c", "r-keep")
	w, cs := gcCluster(t, a, b, keep, podOf(a, "run-a-p", false), podOf(b, "run-b-p", false), podOf(keep, "run-c-p", false))
	if err := w.CancelRun(t.Context(), "r-two", "stop", worker.CancelOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, j := range []*batchv1.Job{a, b} {
		if _, err := cs.Tracker().Get(jobsGVR, "ns", j.Name); !apierrors.IsNotFound(err) {
			t.Errorf("Job %s: %v", j.Name, err)
		}
	}
	if _, err := cs.Tracker().Get(jobsGVR, "ns", keep.Name); err != nil {
		t.Errorf("another run's Job: %v", err)
	}
	if err := w.CancelRun(t.Context(), "r-two", "stop", worker.CancelOptions{}); err != nil {
		t.Errorf("a second CancelRun: %v", err)
	}
	if err := w.Cancel(t.Context(), pidOf(a), "stop", worker.CancelOptions{}); err != nil {
		t.Errorf("a Cancel of one of its Jobs: %v", err)
	}
	if err := w.CancelRun(t.Context(), "r-never", "stop", worker.CancelOptions{}); !errors.Is(err, clusterid.ErrNotFound) {
		t.Errorf("CancelRun of an unknown run: %v", err)
	}
	if err := w.CancelRun(t.Context(), "not a label value", "stop", worker.CancelOptions{}); err == nil {
		t.Errorf("CancelRun of a bad run ID: nil")
	}
}

// A scheduler stops a run from any replica, by the PID it stored when
// the run started; whoever follows the run gets Outcome Cancelled.
func ExampleWorker_Cancel() {
	ctx := context.Background()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "runs", Name: "etl-x7k2p", UID: "job-1", Labels: map[string]string{
		worker.LabelWorker: "etl", manifest.LabelRunID: "run-42", manifest.LabelManagedBy: manifest.ManagedBy,
	}}}
	client := fake.NewClientset(job, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "cluster-1"}})
	w, err := worker.New(client, worker.Options{Name: "etl", Namespace: "runs"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(ctx)

	pid, _ := clusterid.ParsePID("cluster-1:runs:etl-x7k2p") // as stored when the run started
	for range 2 {                                            // a second Cancel gets the same answer
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = w.Cancel(ctx, pid, "superseded by run 43", worker.CancelOptions{Force: true})
		cancel()
		var left *worker.CancelIncompleteError
		switch {
		case errors.As(err, &left):
			fmt.Println("still there:", left.Job, left.Pods)
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Println("cancelled: the Job and its pods are gone")
		}
	}
	err = w.CancelRun(ctx, "run-41", "", worker.CancelOptions{})
	fmt.Println(errors.Is(err, clusterid.ErrNotFound))
	// Output:
	// cancelled: the Job and its pods are gone
	// cancelled: the Job and its pods are gone
	// true
}

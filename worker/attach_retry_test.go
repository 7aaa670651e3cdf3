package worker

import (
	"errors"
	"net"
	"net/url"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// transientFaults are the failures every request of a run's path must
// ride out: each a retry can fix.
func transientFaults() map[string]error {
	return map[string]error{
		"429 without Retry-After": apierrors.NewTooManyRequests("slow down", 0),
		"429 with Retry-After":    apierrors.NewTooManyRequests("slow down", 1),
		"500":                     apierrors.NewInternalError(errors.New("etcd leader changed")),
		"503":                     apierrors.NewServiceUnavailable("restarting"),
		"handler timeout":         apierrors.NewTimeoutError("request did not complete within 1m0s", 0),
		"reset connection":        &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
		"http2 force-closed":      &url.Error{Op: "Get", URL: "https://127.0.0.1/apis/batch/v1/namespaces/ns/jobs/x-1", Err: errors.New("http2: client connection force closed via ClientConn.Close")},
	}
}

// failJobs makes the next n requests of verb on jobs fail with err, and
// returns how many did.
func failJobs(cs *fake.Clientset, verb string, n int, err error) *int {
	failed := 0
	cs.PrependReactor(verb, "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failed < n {
			failed++
			return true, nil, err
		}
		return false, nil, nil
	})
	return &failed
}

func TestAttachRidesOutTransientFailuresOfItsGet(t *testing.T) {
	for name, fault := range transientFaults() {
		t.Run(name, func(t *testing.T) {
			job := ourJob("x-1", "kubeworker", "r-1")
			w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Retry: fastRetry}, job)
			failed := failJobs(cs, "get", 3, fault)
			res, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "x-1"}, AttachOptions{})
			if err != nil || res.Outcome != jobwatch.Succeeded || *failed != 3 {
				t.Fatalf("got %v, %v after %d failed GETs; want Succeeded after 3", res.Outcome, err, *failed)
			}
		})
	}
}

func TestAttachFailsAtOnceOnAForbiddenGet(t *testing.T) {
	w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Retry: fastRetry}, ourJob("x-1", "kubeworker", "r-1"))
	failed := failJobs(cs, "get", 100, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "x-1", errors.New("no")))
	_, err := w.Attach(t.Context(), clusterid.PID{ClusterUID: "uid", Namespace: "ns", Name: "x-1"}, AttachOptions{})
	if !apierrors.IsForbidden(err) || *failed != 1 {
		t.Fatalf("got %v after %d GETs, want Forbidden after 1", err, *failed)
	}
}

func TestTheRetentionPatchRidesOutTransientFailures(t *testing.T) {
	for name, fault := range transientFaults() {
		t.Run(name, func(t *testing.T) {
			job := ourJob("x-1", "kubeworker", "r-1")
			job.Annotations = map[string]string{AnnotationTTL: "30"}
			w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Retry: fastRetry}, job)
			failed := failJobs(cs, "patch", 3, fault)
			w.release(t.Context(), w.clusters.own, hold(job), Result{Result: jobwatch.Result{Outcome: jobwatch.Succeeded}})
			got, err := cs.BatchV1().Jobs("ns").Get(t.Context(), "x-1", metav1.GetOptions{})
			if err != nil || got.Spec.TTLSecondsAfterFinished == nil || *got.Spec.TTLSecondsAfterFinished != 30 || *failed != 3 {
				t.Fatalf("after %d failed patches the Job has TTL %v (%v), want 30", *failed, got.Spec.TTLSecondsAfterFinished, err)
			}
		})
	}
}

func TestListRidesOutTransientFailures(t *testing.T) {
	for name, fault := range transientFaults() {
		t.Run(name, func(t *testing.T) {
			w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Namespace: "ns", Retry: fastRetry}, ourJob("x-1", "kubeworker", "r-1"))
			failed := failJobs(cs, "list", 3, fault)
			runs, err := w.List(t.Context())
			if err != nil || len(runs) != 1 || *failed != 3 {
				t.Fatalf("got %d runs, %v after %d failed LISTs; want 1 after 3", len(runs), err, *failed)
			}
		})
	}
}

func TestSweepsDeleteRidesOutTransientFailures(t *testing.T) {
	for name, fault := range transientFaults() {
		t.Run(name, func(t *testing.T) {
			w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Namespace: "ns", Retry: fastRetry}, ourJob("old", "kubeworker", "r-old"))
			failed := failJobs(cs, "delete", 3, fault)
			report, err := w.Sweep(t.Context(), func(string) bool { return false }, SweepOptions{})
			<-report.Done
			if err != nil || len(report.Deleted) != 1 || *failed != 3 {
				t.Fatalf("deleted %v, %v after %d failed deletes; want old deleted after 3", report.Deleted, err, *failed)
			}
		})
	}
	t.Run("a delete whose answer was lost counts as done", func(t *testing.T) {
		old := ourJob("old", "kubeworker", "r-old")
		w, cs := fakeJobsWorker(t, &fakeParts{}, Options{Namespace: "ns", Retry: fastRetry}, old)
		calls := 0
		cs.PrependReactor("delete", "jobs", func(k8stesting.Action) (bool, runtime.Object, error) {
			if calls++; calls == 1 {
				if err := cs.Tracker().Delete(schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "ns", "old"); err != nil {
					t.Error(err)
				}
				return true, nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
			}
			return false, nil, nil
		})
		report, err := w.Sweep(t.Context(), func(string) bool { return false }, SweepOptions{})
		<-report.Done
		if err != nil || len(report.Deleted) != 1 {
			t.Fatalf("deleted %v, spared %v, %v; want old deleted", report.Deleted, report.Spared, err)
		}
	})
}

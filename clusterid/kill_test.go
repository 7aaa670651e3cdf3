package clusterid_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/clusterid"
)

func TestKill(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "etl-1"}}
	ours := clusterid.PID{ClusterUID: testUID, Namespace: "ns", Name: "etl-1"}
	jobs := schema.GroupResource{Group: "batch", Resource: "jobs"}
	tests := []struct {
		name      string
		pid       clusterid.PID
		grace     time.Duration
		deleteErr error
		wantGrace *int64 // GracePeriodSeconds sent
		deletes   int    // delete calls expected
		check     func(t *testing.T, err error)
	}{
		{name: "deletes the job in the foreground with the grace in seconds", pid: ours, grace: 30 * time.Second, wantGrace: new(int64(30)), deletes: 1},
		{name: "rounds a grace of part of a second up", pid: ours, grace: 1500 * time.Millisecond, wantGrace: new(int64(2)), deletes: 1},
		{name: "sends a zero grace as zero", pid: ours, grace: 0, wantGrace: new(int64(0)), deletes: 1},
		{name: "sends no grace for a negative one", pid: ours, grace: -1, deletes: 1},
		{
			name: "reports a missing job as ErrNotFound that is still an API NotFound",
			pid:  clusterid.PID{ClusterUID: testUID, Namespace: "ns", Name: "gone"}, grace: time.Second, wantGrace: new(int64(1)), deletes: 1,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, clusterid.ErrNotFound) || !apierrors.IsNotFound(err) {
					t.Errorf("errors.Is(ErrNotFound) = %t, apierrors.IsNotFound = %t for %v; want both", errors.Is(err, clusterid.ErrNotFound), apierrors.IsNotFound(err), err)
				}
			},
		},
		{
			name: "refuses a PID of another cluster before any delete",
			pid:  clusterid.PID{ClusterUID: "other-cluster", Namespace: "ns", Name: "etl-1"},
			check: func(t *testing.T, err error) {
				var wrong *clusterid.WrongClusterError
				if !errors.As(err, &wrong) || !errors.Is(err, clusterid.ErrWrongCluster) {
					t.Fatalf("error %v is not a *WrongClusterError matching ErrWrongCluster", err)
				}
				if wrong.Want != testUID || wrong.PID.ClusterUID != "other-cluster" {
					t.Errorf("WrongClusterError = %+v", wrong)
				}
			},
		},
		{
			name: "refuses a malformed PID before any call",
			pid:  clusterid.PID{ClusterUID: testUID, Namespace: "NS", Name: "etl-1"},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, clusterid.ErrInvalidPID) {
					t.Errorf("error %v does not match ErrInvalidPID", err)
				}
			},
		},
		{
			name: "wraps a forbidden delete",
			pid:  ours, grace: time.Second, wantGrace: new(int64(1)), deletes: 1,
			deleteErr: apierrors.NewForbidden(jobs, "etl-1", errors.New("no")),
			check: func(t *testing.T, err error) {
				if !apierrors.IsForbidden(err) || errors.Is(err, clusterid.ErrNotFound) {
					t.Errorf("error %v: want Forbidden, not ErrNotFound", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(kubeSystem(testUID), job.DeepCopy())
			if tt.deleteErr != nil {
				client.PrependReactor("delete", "jobs", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, tt.deleteErr
				})
			}
			err := clusterid.New(client, clusterid.Options{LookupEnv: env(nil)}).Kill(t.Context(), tt.pid, tt.grace)
			if tt.check != nil {
				if err == nil {
					t.Fatal("Kill succeeded, want an error")
				}
				tt.check(t, err)
			} else if err != nil {
				t.Fatalf("Kill: %v", err)
			}
			var deletes []clienttesting.DeleteActionImpl
			for _, a := range client.Actions() {
				if d, ok := a.(clienttesting.DeleteActionImpl); ok {
					deletes = append(deletes, d)
				}
			}
			if len(deletes) != tt.deletes {
				t.Fatalf("%d delete calls, want %d", len(deletes), tt.deletes)
			}
			if tt.deletes == 0 {
				return
			}
			d := deletes[0]
			if d.Namespace != tt.pid.Namespace || d.Name != tt.pid.Name || d.Resource.Resource != "jobs" {
				t.Errorf("deleted %s %s/%s, want jobs %s/%s", d.Resource.Resource, d.Namespace, d.Name, tt.pid.Namespace, tt.pid.Name)
			}
			if p := d.DeleteOptions.PropagationPolicy; p == nil || *p != metav1.DeletePropagationForeground {
				t.Errorf("PropagationPolicy = %v, want Foreground", p)
			}
			if g := d.DeleteOptions.GracePeriodSeconds; (g == nil) != (tt.wantGrace == nil) || g != nil && *g != *tt.wantGrace {
				t.Errorf("GracePeriodSeconds = %v, want %v", deref(g), deref(tt.wantGrace))
			}
		})
	}
}

func TestKillWrapsAFailedUIDRead(t *testing.T) {
	client := fake.NewClientset() // no kube-system
	err := clusterid.New(client, clusterid.Options{LookupEnv: env(nil)}).Kill(t.Context(), clusterid.PID{ClusterUID: testUID, Namespace: "ns", Name: "j"}, 0)
	if !apierrors.IsNotFound(err) || errors.Is(err, clusterid.ErrNotFound) {
		t.Fatalf("Kill = %v; want the namespace read's NotFound, which is not ErrNotFound (no Job was looked for)", err)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "nil"
	}
	return *p
}

func TestKillRidesOutTransientFailures(t *testing.T) {
	pid := clusterid.PID{ClusterUID: testUID, Namespace: "ns", Name: "etl-1"}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "etl-1"}}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name    string
		faults  []error
		applied bool // the first failed delete did delete the Job
		wantErr func(error) bool
		deletes int
	}{
		{name: "a 429 without Retry-After", faults: []error{apierrors.NewTooManyRequests("slow down", 0)}, deletes: 2},
		{name: "a 429 with Retry-After", faults: []error{apierrors.NewTooManyRequests("slow down", 1)}, deletes: 2},
		{name: "a 500 and a 503", faults: []error{apierrors.NewInternalError(errors.New("x")), apierrors.NewServiceUnavailable("y")}, deletes: 3},
		{name: "a timeout", faults: []error{apierrors.NewTimeoutError("handler timeout", 0)}, deletes: 2},
		{name: "a reset connection whose delete was done counts as done", faults: []error{reset}, applied: true, deletes: 2},
		{name: "a forbidden delete fails at once", faults: []error{apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "etl-1", errors.New("no"))},
			wantErr: apierrors.IsForbidden, deletes: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(kubeSystem(testUID), job.DeepCopy())
			calls := 0
			client.PrependReactor("delete", "jobs", func(clienttesting.Action) (bool, runtime.Object, error) {
				calls++
				if calls > len(tt.faults) {
					return false, nil, nil
				}
				if tt.applied {
					if err := client.Tracker().Delete(schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}, "ns", "etl-1"); err != nil {
						t.Error(err)
					}
				}
				return true, nil, tt.faults[calls-1]
			})
			err := clusterid.New(client, clusterid.Options{LookupEnv: env(nil), Retry: fast}).Kill(t.Context(), pid, 0)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Kill: %v", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("Kill: %v, not the error wanted", err)
			}
			if calls != tt.deletes {
				t.Errorf("%d deletes, want %d", calls, tt.deletes)
			}
		})
	}
}

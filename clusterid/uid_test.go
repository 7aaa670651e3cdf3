package clusterid_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/retry"
)

func kubeSystem(uid string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: types.UID(uid)}}
}

// env returns a LookupEnv that sees only m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// namespaceGets counts the client's reads of namespaces.
func namespaceGets(client *fake.Clientset) int {
	n := 0
	for _, a := range client.Actions() {
		if a.Matches("get", "namespaces") {
			n++
		}
	}
	return n
}

var nsResource = schema.GroupResource{Resource: "namespaces"}

func TestUID(t *testing.T) {
	forbidden := apierrors.NewForbidden(nsResource, "kube-system", errors.New(`User "worker" cannot get resource "namespaces"`))
	tests := []struct {
		name     string
		opts     clusterid.Options
		objects  []runtime.Object
		getErr   error // returned by the API for the namespace read
		want     string
		wantGets int
		check    func(t *testing.T, err error) // for an error case
	}{
		{
			name:    "uses Options.UID without reading the cluster, even when the env var is set",
			opts:    clusterid.Options{UID: "from-options", LookupEnv: env(map[string]string{clusterid.EnvUID: "from-env"})},
			objects: []runtime.Object{kubeSystem(testUID)}, want: "from-options",
		},
		{
			name:    "uses the env var without reading the cluster when Options.UID is empty",
			opts:    clusterid.Options{LookupEnv: env(map[string]string{clusterid.EnvUID: "from-env"})},
			objects: []runtime.Object{kubeSystem(testUID)}, want: "from-env",
		},
		{
			name:    "treats an empty env var as unset and reads kube-system",
			opts:    clusterid.Options{LookupEnv: env(map[string]string{clusterid.EnvUID: ""})},
			objects: []runtime.Object{kubeSystem(testUID)}, want: testUID, wantGets: 1,
		},
		{
			name:    "reads the metadata.uid of kube-system",
			opts:    clusterid.Options{LookupEnv: env(nil)},
			objects: []runtime.Object{kubeSystem(testUID)}, want: testUID, wantGets: 1,
		},
		{
			name: "refuses an Options.UID with a colon, which would break PIDs",
			opts: clusterid.Options{UID: "a:b", LookupEnv: env(nil)},
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "Options.UID") || !strings.Contains(err.Error(), "colon") {
					t.Errorf("error %q does not name Options.UID and the colon", err)
				}
			},
		},
		{
			name: "refuses an env UID with a space",
			opts: clusterid.Options{LookupEnv: env(map[string]string{clusterid.EnvUID: "a b"})},
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), clusterid.EnvUID) {
					t.Errorf("error %q does not name %s", err, clusterid.EnvUID)
				}
			},
		},
		{
			name: "wraps a forbidden read and hints at the option and env var",
			opts: clusterid.Options{LookupEnv: env(nil)}, getErr: forbidden, wantGets: 1,
			check: func(t *testing.T, err error) {
				if !apierrors.IsForbidden(err) {
					t.Errorf("apierrors.IsForbidden(%v) = false", err)
				}
				if !strings.Contains(err.Error(), "Options.UID") || !strings.Contains(err.Error(), clusterid.EnvUID) {
					t.Errorf("error %q gives no hint", err)
				}
			},
		},
		{
			name: "wraps a missing kube-system as not found",
			opts: clusterid.Options{LookupEnv: env(nil)}, wantGets: 1,
			check: func(t *testing.T, err error) {
				if !apierrors.IsNotFound(err) {
					t.Errorf("apierrors.IsNotFound(%v) = false", err)
				}
			},
		},
		{
			name:    "refuses a kube-system namespace without a uid",
			opts:    clusterid.Options{LookupEnv: env(nil)},
			objects: []runtime.Object{kubeSystem("")}, wantGets: 1,
			check: func(t *testing.T, err error) {
				if !strings.Contains(err.Error(), "metadata.uid is empty") {
					t.Errorf("error %q does not say the uid is empty", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			if tt.getErr != nil {
				client.PrependReactor("get", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
					return true, nil, tt.getErr
				})
			}
			got, err := clusterid.New(client, tt.opts).UID(t.Context())
			if tt.check != nil {
				if err == nil {
					t.Fatalf("UID = %q, want an error", got)
				}
				tt.check(t, err)
			} else if err != nil || got != tt.want {
				t.Fatalf("UID = %q, %v; want %q", got, err, tt.want)
			}
			if n := namespaceGets(client); n != tt.wantGets {
				t.Errorf("read namespaces %d times, want %d", n, tt.wantGets)
			}
		})
	}
}

func TestUIDIsReadOnceAndCached(t *testing.T) {
	client := fake.NewClientset(kubeSystem(testUID))
	c := clusterid.New(client, clusterid.Options{LookupEnv: env(nil)})
	for range 3 {
		if uid, err := c.UID(t.Context()); err != nil || uid != testUID {
			t.Fatalf("UID = %q, %v", uid, err)
		}
	}
	if n := namespaceGets(client); n != 1 {
		t.Fatalf("read namespaces %d times, want 1", n)
	}
}

func TestUIDFailedReadIsNotCached(t *testing.T) {
	client := fake.NewClientset(kubeSystem(testUID))
	failures := 1
	client.PrependReactor("get", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failures > 0 {
			failures--
			return true, nil, apierrors.NewInternalError(errors.New("etcd timeout"))
		}
		return false, nil, nil
	})
	// One attempt, so that the 500 fails the first read (by default it is
	// retried: see TestUIDReadRidesOutTransientFailures).
	c := clusterid.New(client, clusterid.Options{LookupEnv: env(nil), Retry: retry.Policy{Attempts: 1}})
	if _, err := c.UID(t.Context()); !apierrors.IsInternalError(err) {
		t.Fatalf("first UID: %v, want the internal error", err)
	}
	if uid, err := c.UID(t.Context()); err != nil || uid != testUID {
		t.Fatalf("second UID = %q, %v; want %q", uid, err, testUID)
	}
	if n := namespaceGets(client); n != 2 {
		t.Fatalf("read namespaces %d times, want 2", n)
	}
}

// blockingReads makes each namespace read signal started and wait for a
// value on release: nil lets the fake answer, an error is returned.
func blockingReads(client *fake.Clientset) (started chan struct{}, release chan error) {
	started, release = make(chan struct{}, 16), make(chan error)
	client.PrependReactor("get", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
		started <- struct{}{}
		if err := <-release; err != nil {
			return true, nil, err
		}
		return false, nil, nil
	})
	return started, release
}

func TestUIDConcurrentFirstCallersShareOneRead(t *testing.T) {
	client := fake.NewClientset(kubeSystem(testUID))
	started, release := blockingReads(client)
	c := clusterid.New(client, clusterid.Options{LookupEnv: env(nil)})

	const callers = 20
	var wg sync.WaitGroup
	uids, errs := make([]string, callers), make([]error, callers)
	for i := range callers {
		wg.Go(func() { uids[i], errs[i] = c.UID(t.Context()) })
	}
	<-started
	time.Sleep(50 * time.Millisecond) // let the other callers find the read under way
	close(release)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || uids[i] != testUID {
			t.Errorf("caller %d: UID = %q, %v", i, uids[i], errs[i])
		}
	}
	if n := namespaceGets(client); n != 1 {
		t.Fatalf("%d callers read namespaces %d times, want 1", callers, n)
	}
}

func TestUIDWaiterStopsWhenItsOwnContextEnds(t *testing.T) {
	client := fake.NewClientset(kubeSystem(testUID))
	started, release := blockingReads(client)
	c := clusterid.New(client, clusterid.Options{LookupEnv: env(nil)})

	var wg sync.WaitGroup
	var leaderUID string
	var leaderErr error
	wg.Go(func() { leaderUID, leaderErr = c.UID(t.Context()) })
	<-started

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.UID(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter with a cancelled context: %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if leaderErr != nil || leaderUID != testUID {
		t.Fatalf("reader: UID = %q, %v", leaderUID, leaderErr)
	}
}

func TestUIDWaiterReadsAgainWhenTheReaderGivesUp(t *testing.T) {
	client := fake.NewClientset(kubeSystem(testUID))
	started, release := blockingReads(client)
	c := clusterid.New(client, clusterid.Options{LookupEnv: env(nil)})

	var wg sync.WaitGroup
	var leaderErr error
	wg.Go(func() { _, leaderErr = c.UID(t.Context()) })
	<-started
	var waiterUID string
	var waiterErr error
	wg.Go(func() { waiterUID, waiterErr = c.UID(t.Context()) })
	time.Sleep(50 * time.Millisecond) // let the waiter find the read under way

	release <- context.Canceled // the reader's context ended
	<-started                   // the waiter's own read
	release <- nil
	wg.Wait()
	if !errors.Is(leaderErr, context.Canceled) {
		t.Errorf("reader: %v, want context.Canceled", leaderErr)
	}
	if waiterErr != nil || waiterUID != testUID {
		t.Fatalf("waiter: UID = %q, %v; want %q", waiterUID, waiterErr, testUID)
	}
}

func TestPIDUsesTheClusterUID(t *testing.T) {
	c := clusterid.New(fake.NewClientset(kubeSystem(testUID)), clusterid.Options{LookupEnv: env(nil)})
	pid, err := c.PID(t.Context(), "team-a", "etl-x7k2p")
	if err != nil {
		t.Fatal(err)
	}
	if want := (clusterid.PID{ClusterUID: testUID, Namespace: "team-a", Name: "etl-x7k2p"}); pid != want {
		t.Fatalf("PID = %#v, want %#v", pid, want)
	}
	if _, err := c.PID(t.Context(), "Team A", "etl"); !errors.Is(err, clusterid.ErrInvalidPID) {
		t.Fatalf("PID of a bad namespace: %v, want ErrInvalidPID", err)
	}
}

// fast is a retry policy with short waits for tests; the waits are
// never asserted.
var fast = retry.Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond}

func TestUIDReadRidesOutTransientFailures(t *testing.T) {
	for _, fault := range []error{
		apierrors.NewTooManyRequests("slow down", 0),
		apierrors.NewInternalError(errors.New("etcd timeout")),
		apierrors.NewServiceUnavailable("restarting"),
		apierrors.NewTimeoutError("handler timeout", 0),
		&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET},
	} {
		client := fake.NewClientset(kubeSystem(testUID))
		failures := 3
		client.PrependReactor("get", "namespaces", func(clienttesting.Action) (bool, runtime.Object, error) {
			if failures > 0 {
				failures--
				return true, nil, fault
			}
			return false, nil, nil
		})
		uid, err := clusterid.New(client, clusterid.Options{LookupEnv: env(nil), Retry: fast}).UID(t.Context())
		if err != nil || uid != testUID || namespaceGets(client) != 4 {
			t.Errorf("%v: UID = %q, %v after %d reads; want %q after 4", fault, uid, err, namespaceGets(client), testUID)
		}
	}
}

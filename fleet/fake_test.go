package fleet_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubeworker/kubeworker/fleet"
)

// These tests use client-go's fake clientset and a fake clock for the
// members view; the API server's own behaviour is in the e2e tests.

// fakeOptions are short-lived options for the fake clientset.
func fakeOptions(identity string, clk *clocktesting.FakeClock) fleet.Options {
	return fleet.Options{Namespace: "ns", Worker: "etl", Identity: identity,
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 300 * time.Millisecond, Clock: clk}
}

// otherLease creates the Lease of another replica, held by holder.
func otherLease(t *testing.T, client kubernetes.Interface, identity, holder string, seconds int32) {
	t.Helper()
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "etl-" + identity, Namespace: "ns", Labels: map[string]string{fleet.LabelWorker: "etl"}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &now, AcquireTime: &now},
	}
	if _, err := client.CoordinationV1().Leases("ns").Create(t.Context(), lease, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// join joins or fails the test, leaving at its end.
func join(t *testing.T, client kubernetes.Interface, opts fleet.Options) *fleet.Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m, err := fleet.Join(ctx, client, opts)
	if err != nil {
		t.Fatalf("join %s: %v", opts.Identity, err)
	}
	t.Cleanup(func() {
		if err := m.Leave(context.Background()); err != nil {
			t.Errorf("leave %s: %v", m.Name(), err)
		}
	})
	return m
}

// eventually polls cond until it holds, failing the test after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after a minute waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFakeJoinHoldsALabelledLeaseAndSeesItself(t *testing.T) {
	client := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Now())
	m := join(t, client, fakeOptions("a", clk))
	if !strings.HasPrefix(m.Name(), "a/") || len(m.Name()) <= len("a/") || m.Identity() != "a" {
		t.Errorf("Name %q, Identity %q: want a/<incarnation> and a", m.Name(), m.Identity())
	}
	if got := m.Members(); !slices.Equal(got, []string{m.Name()}) {
		t.Errorf("members %v right after Join, want only %s", got, m.Name())
	}
	lease, err := client.CoordinationV1().Leases("ns").Get(t.Context(), "etl-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Labels[fleet.LabelWorker] != "etl" || *lease.Spec.HolderIdentity != m.Name() || *lease.Spec.LeaseDurationSeconds != 2 {
		t.Errorf("Lease labels %v, spec %+v", lease.Labels, lease.Spec)
	}
	if m.Owner("run") != m.Name() || m.Err() != nil || closed(m.Lost()) {
		t.Errorf("a lone live member: Owner %q, Err %v, Lost closed %v", m.Owner("run"), m.Err(), closed(m.Lost()))
	}
}

func TestFakeMembersExpireOnTheLocalClock(t *testing.T) {
	client := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Now())
	otherLease(t, client, "b", "b/1", 1)
	otherLease(t, client, "c", "c/1", 5)
	m := join(t, client, fakeOptions("a", clk))
	if got, want := m.Members(), []string{m.Name(), "b/1", "c/1"}; !slices.Equal(got, want) {
		t.Fatalf("members %v, want %v", got, want)
	}
	otherLease(t, client, "d", "d/1", 1)
	eventually(t, "d to join", func() bool { return slices.Contains(m.Members(), "d/1") })
	drain(m.Changes())
	// On the view's clock b's and d's second is up; a renews (and its
	// deadline is 1.5 s of the same clock, so step less than that).
	clk.Step(1200 * time.Millisecond)
	<-m.Changes()
	if got, want := m.Members(), []string{m.Name(), "c/1"}; !slices.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if owner := m.Owner("run-1"); owner != m.Name() && owner != "c/1" {
		t.Errorf("run-1 owned by %q, not a live member", owner)
	}
}

// drain empties a signal channel.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func TestFakeLeaveDeletesTheLeaseOnce(t *testing.T) {
	client := fake.NewClientset()
	m, err := fleet.Join(t.Context(), client, fakeOptions("a", clocktesting.NewFakeClock(time.Now())))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !closed(m.Lost()) || !errors.Is(m.Err(), fleet.ErrLeft) {
		t.Errorf("after Leave: Lost closed %v, Err %v", closed(m.Lost()), m.Err())
	}
	if _, err := client.CoordinationV1().Leases("ns").Get(t.Context(), "etl-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease after Leave: %v, want not found", err)
	}
	if err := m.Leave(t.Context()); err != nil {
		t.Errorf("second Leave: %v", err)
	}
}

func TestFakeADeletedLeaseIsLostAndNotRecreated(t *testing.T) {
	client := fake.NewClientset()
	m := join(t, client, fakeOptions("a", clocktesting.NewFakeClock(time.Now())))
	if err := client.CoordinationV1().Leases("ns").Delete(t.Context(), "etl-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Lost", func() bool { return closed(m.Lost()) })
	if err := m.Err(); !errors.Is(err, fleet.ErrLost) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("Err %v, want ErrLost: deleted", err)
	}
	time.Sleep(time.Second) // some retry periods: a renewal would recreate it
	if _, err := client.CoordinationV1().Leases("ns").Get(t.Context(), "etl-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease after its loss: %v, want not found", err)
	}
}

func TestFakeATakenLeaseIsLost(t *testing.T) {
	client := fake.NewClientset()
	m := join(t, client, fakeOptions("a", clocktesting.NewFakeClock(time.Now())))
	leases := client.CoordinationV1().Leases("ns")
	lease, err := leases.Get(t.Context(), "etl-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	thief := "a/thief"
	lease.Spec.HolderIdentity = &thief
	if _, err := leases.Update(t.Context(), lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Lost", func() bool { return closed(m.Lost()) })
	if err := m.Err(); !errors.Is(err, fleet.ErrLost) || !strings.Contains(err.Error(), `held by "a/thief"`) {
		t.Errorf("Err %v, want ErrLost: held by a/thief", err)
	}
	// That Leave then leaves the thief's Lease alone needs the API
	// server's resourceVersion checks, which the fake does not make: see
	// the e2e tests.
}

func TestFakeNoRenewalWithinTheDeadlineIsLost(t *testing.T) {
	client := fake.NewClientset()
	clk := clocktesting.NewFakeClock(time.Now())
	m := join(t, client, fakeOptions("a", clk))
	// The renewals go on in real time; on the member's clock, none is
	// later than the start.
	clk.Step(1500 * time.Millisecond)
	eventually(t, "Lost", func() bool { return closed(m.Lost()) })
	if err := m.Err(); !errors.Is(err, fleet.ErrLost) || !strings.Contains(err.Error(), "no renewal succeeded within 1.5s") {
		t.Errorf("Err %v, want ErrLost: no renewal within 1.5s", err)
	}
}

func TestFakeJoinWaitsForAnotherHoldersLeaseAndGivesUpWithItsContext(t *testing.T) {
	client := fake.NewClientset()
	otherLease(t, client, "a", "a/earlier", 60)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	m, err := fleet.Join(ctx, client, fakeOptions("a", clocktesting.NewFakeClock(time.Now())))
	if !errors.Is(err, context.DeadlineExceeded) || m != nil {
		t.Fatalf("Join: %v, %v; want the context's deadline", m, err)
	}
	if !strings.Contains(err.Error(), "take the Lease") {
		t.Errorf("error %q does not say what Join waited for", err)
	}
	lease, err := client.CoordinationV1().Leases("ns").Get(t.Context(), "etl-a", metav1.GetOptions{})
	if err != nil || *lease.Spec.HolderIdentity != "a/earlier" {
		t.Errorf("the other holder's Lease: %v, %v", lease, err)
	}
}

func TestFakeJoinRefusesBadOptions(t *testing.T) {
	_, err := fleet.Join(t.Context(), fake.NewClientset(), fleet.Options{Namespace: "ns", Identity: "a"})
	if !errors.Is(err, fleet.ErrInvalidOptions) || !strings.Contains(err.Error(), "Worker") {
		t.Errorf("Join without Worker: %v", err)
	}
}

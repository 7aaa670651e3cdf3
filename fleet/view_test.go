package fleet

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

// lease is a Lease of the fleet "w" held by holder, renewed at renew.
func lease(name, holder string, seconds int32, renew time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{LabelWorker: "w"}},
		Spec:       coordinationv1.LeaseSpec{LeaseDurationSeconds: &seconds, RenewTime: &metav1.MicroTime{Time: renew}},
	}
	if holder != "" {
		l.Spec.HolderIdentity = &holder
	}
	return l
}

// testView is a view fed by hand, its informer never run.
func testView(t *testing.T, clk *clocktesting.FakeClock) *view {
	t.Helper()
	opts, err := Options{Namespace: "ns", Worker: "w", Identity: "me", Clock: clk}.complete()
	if err != nil {
		t.Fatal(err)
	}
	v, err := newView(fake.NewClientset(), opts, func(*coordinationv1.Lease, bool) {})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestViewCountsAMemberLiveForItsLeaseDurationOnTheLocalClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	v := testView(t, clk)
	// The holder's clock is a day behind: its renewTime is not trusted.
	skewed := clk.Now().Add(-24 * time.Hour)
	v.onChange(lease("w-a", "a/1", 10, skewed))
	v.onChange(lease("w-b", "b/1", 20, skewed))
	if got, _ := v.members(clk.Now()); !slices.Equal(got, []string{"a/1", "b/1"}) {
		t.Fatalf("members %v, want a/1 and b/1", got)
	}
	clk.Step(9 * time.Second)
	// A repeated record (a relist, a resync) is not a renewal.
	v.onChange(lease("w-a", "a/1", 10, skewed))
	clk.Step(time.Second)
	if got, next := v.members(clk.Now()); !slices.Equal(got, []string{"b/1"}) || !next.Equal(time.Unix(1020, 0)) {
		t.Fatalf("after 10s: members %v expiring %v, want b/1 expiring at 1020", got, next)
	}
	// A renewal, even with a renewTime from the past, makes it live again.
	v.onChange(lease("w-a", "a/1", 10, skewed.Add(time.Second)))
	if got, _ := v.members(clk.Now()); !slices.Equal(got, []string{"a/1", "b/1"}) {
		t.Fatalf("after a renewal: members %v", got)
	}
}

func TestViewDropsDeletedAndReleasedLeases(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	v := testView(t, clk)
	v.onChange(lease("w-a", "a/1", 10, clk.Now()))
	v.onChange(lease("w-b", "b/1", 10, clk.Now()))
	v.onChange(lease("w-c", "", 1, clk.Now())) // released by client-go
	v.onDelete(lease("w-a", "a/1", 10, clk.Now()))
	if got, _ := v.members(clk.Now()); !slices.Equal(got, []string{"b/1"}) {
		t.Fatalf("members %v, want b/1", got)
	}
	// A deletion of an older Lease of the same name leaves the new one.
	old := lease("w-b", "b/0", 10, clk.Now())
	old.UID = "older"
	v.onDelete(old)
	if got, _ := v.members(clk.Now()); !slices.Equal(got, []string{"b/1"}) {
		t.Fatalf("members %v after a stale delete, want b/1", got)
	}
}

func TestViewSignalsAnExpiryByItsTimerWithoutAnEvent(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1000, 0))
	v := testView(t, clk)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { v.loop(ctx) })

	v.onChange(lease("w-a", "a/1", 2, clk.Now()))
	v.onChange(lease("w-b", "b/1", 5, clk.Now()))
	<-v.changes // a and b joined
	waitFor(t, "the expiry timer", func() bool { return clk.HasWaiters() })
	clk.Step(2 * time.Second)
	<-v.changes
	if got, _ := v.members(clk.Now()); !slices.Equal(got, []string{"b/1"}) {
		t.Fatalf("members %v after a's expiry, want b/1", got)
	}
	waitFor(t, "the next expiry timer", func() bool { return clk.HasWaiters() })
	clk.Step(3 * time.Second)
	<-v.changes
	if got, _ := v.members(clk.Now()); len(got) != 0 {
		t.Fatalf("members %v after b's expiry, want none", got)
	}
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

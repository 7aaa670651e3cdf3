package fleet_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/fleet"
)

// quick are the short timings of the e2e tests: a member that stops
// renewing is lost 1.5 s after its last renewal began, and dropped by the
// others 3 s after they saw it.
func quick(ns, identity string) fleet.Options {
	return fleet.Options{Namespace: ns, Worker: "etl", Identity: identity,
		LeaseDuration: 3 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 300 * time.Millisecond}
}

func clientFor(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// within polls cond every 10 ms until it holds, failing the test after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sees reports whether m's view is exactly names.
func sees(m *fleet.Member, names ...string) func() bool {
	want := slices.Sorted(slices.Values(names))
	return func() bool { return slices.Equal(m.Members(), want) }
}

func TestE2EMembersSeeEachOtherAndOneThatLeavesIsGoneAtOnce(t *testing.T) {
	t.Parallel()
	c := needCluster(t)
	ns, client := c.NewNamespace(t), clientFor(t, c.Config())
	// A long lease: a departure seen within half of it came by the watch.
	slow := func(id string) fleet.Options {
		return fleet.Options{Namespace: ns, Worker: "etl", Identity: id, LeaseDuration: 60 * time.Second, RetryPeriod: time.Second}
	}
	a, b, x := join(t, client, slow("a")), join(t, client, slow("b")), join(t, client, slow("x"))
	all := []*fleet.Member{a, b, x}
	for _, m := range all {
		within(t, time.Minute, m.Name()+" to see all three", sees(m, a.Name(), b.Name(), x.Name()))
	}
	ids := runIDs(1000)
	owned := map[string]string{}
	for _, id := range ids {
		owned[id] = a.Owner(id)
		if b.Owner(id) != owned[id] || x.Owner(id) != owned[id] {
			t.Fatalf("run %s: owners %q, %q, %q differ", id, owned[id], b.Owner(id), x.Owner(id))
		}
	}
	drain(a.Changes())
	if err := x.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	within(t, 30*time.Second, "a and b to see x leave", func() bool { return sees(a, a.Name(), b.Name())() && sees(b, a.Name(), b.Name())() })
	select {
	case <-a.Changes():
	default:
		t.Error("a saw x leave without a signal on Changes")
	}
	if _, err := client.CoordinationV1().Leases(ns).Get(t.Context(), "etl-x", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("x's Lease after Leave: %v, want not found", err)
	}
	for _, id := range ids {
		if now := a.Owner(id); (owned[id] != x.Name() && now != owned[id]) || now != b.Owner(id) {
			t.Fatalf("run %s: owned by %s, now %s for a and %s for b", id, owned[id], now, b.Owner(id))
		}
	}
}

func TestE2EACutOffMemberIsLostBeforeTheOthersDropItAndRejoinsAsANewMember(t *testing.T) {
	t.Parallel()
	c := needCluster(t)
	ns, client := c.NewNamespace(t), clientFor(t, c.Config())
	// x talks through the fault proxy, under its own user agent.
	xcfg := rest.CopyConfig(c.ProxyConfig())
	xcfg.UserAgent = "fleet-e2e-cut-" + ns
	xclient := clientFor(t, xcfg)
	a, b, x := join(t, client, quick(ns, "a")), join(t, client, quick(ns, "b")), join(t, xclient, quick(ns, "x"))
	for _, m := range []*fleet.Member{a, b, x} {
		within(t, time.Minute, m.Name()+" to see all three", sees(m, a.Name(), b.Name(), x.Name()))
	}

	// x's connection fails: every request gets 503, its renewals too.
	undo := c.Proxy().Refuse(func(r *http.Request) bool { return r.UserAgent() == xcfg.UserAgent })
	within(t, time.Minute, "a to drop x", func() bool {
		if !slices.Contains(a.Members(), x.Name()) {
			// The fence: x knew before any other replica did.
			if !closed(x.Lost()) {
				t.Errorf("a dropped x before x's Lost was closed")
			}
			return true
		}
		return false
	})
	within(t, time.Minute, "b to drop x", sees(b, a.Name(), b.Name()))
	if err := x.Err(); !errors.Is(err, fleet.ErrLost) || !strings.Contains(err.Error(), "no renewal succeeded within 1.5s") {
		t.Errorf("x's Err: %v, want ErrLost for no renewal", err)
	}

	// x comes back and joins again, as a new member; its earlier
	// incarnation's expired Lease is taken over, not recreated.
	undo()
	x2 := join(t, xclient, quick(ns, "x"))
	if x2.Name() == x.Name() || x2.Identity() != x.Identity() {
		t.Errorf("rejoined as %s (identity %s), was %s", x2.Name(), x2.Identity(), x.Name())
	}
	for _, m := range []*fleet.Member{a, b, x2} {
		within(t, time.Minute, m.Name()+" to see x2", sees(m, a.Name(), b.Name(), x2.Name()))
	}
	// The old incarnation's Leave must not delete the new one's Lease.
	if err := x.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	lease, err := client.CoordinationV1().Leases(ns).Get(t.Context(), "etl-x", metav1.GetOptions{})
	if err != nil || *lease.Spec.HolderIdentity != x2.Name() {
		t.Fatalf("the Lease after the old incarnation left: %v, %v; want it held by %s", lease, err, x2.Name())
	}
	if closed(x2.Lost()) || !slices.Contains(a.Members(), x2.Name()) {
		t.Errorf("x2 lost (%v) or gone from a's view (%v)", x2.Err(), a.Members())
	}
}

func TestE2EAMemberWhoseLeaseIsTakenOrDeletedIsLost(t *testing.T) {
	t.Parallel()
	c := needCluster(t)
	ns, client := c.NewNamespace(t), clientFor(t, c.Config())
	leases := client.CoordinationV1().Leases(ns)
	a, b := join(t, client, quick(ns, "a")), join(t, client, quick(ns, "b"))

	lease, err := leases.Get(t.Context(), "etl-a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	thief := "a/thief"
	lease.Spec.HolderIdentity = &thief
	if _, err := leases.Update(t.Context(), lease, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "a to be lost", func() bool { return closed(a.Lost()) })
	if err := a.Err(); !errors.Is(err, fleet.ErrLost) || !strings.Contains(err.Error(), `held by "a/thief"`) {
		t.Errorf("a's Err: %v, want ErrLost: held by a/thief", err)
	}
	if err := a.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, err := leases.Get(t.Context(), "etl-a", metav1.GetOptions{}); err != nil || *got.Spec.HolderIdentity != thief {
		t.Errorf("a's Leave touched the thief's Lease: %v, %v", got, err)
	}

	if err := leases.Delete(t.Context(), "etl-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "b to be lost", func() bool { return closed(b.Lost()) })
	if err := b.Err(); !errors.Is(err, fleet.ErrLost) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("b's Err: %v, want ErrLost: deleted", err)
	}
	time.Sleep(time.Second) // three retry periods: a renewal would recreate it
	if _, err := leases.Get(t.Context(), "etl-b", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("b's Lease after its loss: %v, want not found", err)
	}
}

// HTTP connections are pooled by client-go's transport cache and outlive
// any one client; their goroutines are not the member's.
var httpConnections = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*http2ClientConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
}

func TestE2ENoGoroutineOutlivesLeave(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	c := needCluster(t)
	ns, client := c.NewNamespace(t), clientFor(t, c.Config())
	before := goleak.IgnoreCurrent()
	a, err := fleet.Join(t.Context(), client, quick(ns, "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := fleet.Join(t.Context(), client, quick(ns, "b"))
	if err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "a to see b", sees(a, a.Name(), b.Name()))
	// A lost member's goroutines end at Leave too.
	if err := client.CoordinationV1().Leases(ns).Delete(t.Context(), "etl-b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	within(t, time.Minute, "b to be lost", func() bool { return closed(b.Lost()) })
	for _, m := range []*fleet.Member{a, b} {
		if err := m.Leave(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// A failed Join's goroutines end before it returns: this one waits for
	// the Lease of another replica with the same identity, and gives up.
	h, err := fleet.Join(t.Context(), client, quick(ns, "h"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := fleet.Join(ctx, client, quick(ns, "h")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Join of a held Lease: %v, want the context's deadline", err)
	}
	if err := h.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := goleak.Find(append(httpConnections, before)...); err != nil {
		t.Errorf("goroutines outlive Leave: %v", err)
	}
}

func TestE2ETheRBACOfThePackageDocIsEnoughAndEachVerbIsNeeded(t *testing.T) {
	t.Parallel()
	c := needCluster(t)
	ns, admin := c.NewNamespace(t), clientFor(t, c.Config())
	all := []string{"get", "create", "update", "delete", "list", "watch"}
	tests := []struct {
		without string
		fails   string // what goes wrong without it
	}{
		{"", ""},
		{"get", "join"},
		{"create", "join"},
		{"update", "renewal"},
		{"delete", "leave"},
		// The informer streams its initial list through the watch
		// (client-go's WatchListClient, on by default); a server that
		// cannot falls back to a list.
		{"list", ""},
		// Without watch, the informer relists after each refused watch,
		// backing off: the view works but lags, and says why.
		{"watch", "view"},
	}
	for _, tt := range tests {
		name := "all"
		if tt.without != "" {
			name = "without " + tt.without
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			user := "fleet-rbac-" + strings.ReplaceAll(name, " ", "-")
			verbs := slices.DeleteFunc(slices.Clone(all), func(v string) bool { return v == tt.without })
			grant(t, admin, ns, user, verbs)
			cfg, err := c.UserConfig(user)
			if err != nil {
				t.Fatal(err)
			}
			opts := quick(ns, strings.TrimPrefix(user, "fleet-rbac-"))
			var log syncBuffer
			opts.Logger = slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			m, err := fleet.Join(ctx, clientFor(t, cfg), opts)
			if tt.fails == "join" {
				if err == nil || !strings.Contains(err.Error(), "forbidden") {
					t.Errorf("Join without %s: %v, want it refused", tt.without, err)
				}
				if m != nil {
					m.Leave(t.Context())
				}
				return
			}
			if err != nil {
				t.Fatalf("Join: %v", err)
			}
			if tt.fails == "renewal" {
				within(t, time.Minute, "the member to be lost", func() bool { return closed(m.Lost()) })
				if !strings.Contains(m.Err().Error(), "forbidden") {
					t.Errorf("lost without update: %v, want forbidden", m.Err())
				}
			}
			if tt.fails == "view" {
				within(t, time.Minute, "a warning", func() bool { return strings.Contains(log.String(), "cannot list or watch Leases") })
			}
			err = m.Leave(t.Context())
			if tt.fails == "leave" {
				if !apierrors.IsForbidden(err) {
					t.Errorf("Leave without delete: %v, want forbidden", err)
				}
				return
			}
			if err != nil {
				t.Errorf("Leave: %v", err)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// grant lets user do verbs on leases in ns.
func grant(t *testing.T, client kubernetes.Interface, ns, user string, verbs []string) {
	t.Helper()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: verbs}},
	}
	if _, err := client.RbacV1().Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := client.RbacV1().RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	tc "github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/fleet"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobcreate"
)

// The Leases of fleetScenario's replicas: a renewal is due every 400 ms
// and a replica whose renewals fail is lost 2 s after the last one; a
// little longer than the fleet's other end-to-end tests give, so that a
// loaded machine running every case at once does not lose a replica that
// has all its rights.
const (
	fleetRulesLease   = 3 * time.Second
	fleetRulesRenew   = 2 * time.Second
	fleetRulesRetry   = 400 * time.Millisecond
	fleetRulesRefresh = time.Second // Fleet.Resync
)

// fleetWindow is how long fleetScenario watches two replicas at work
// before one stops. It is longer than RenewDeadline, so a replica that
// cannot renew is lost within it. A members view that cannot watch
// relists after backoffs of 0.8 s, 1.6 s, 3.2 s and on (each with up to
// as much again of jitter), and shows a live member expired once a
// backoff outlasts the Lease: that usually happens within the window,
// and the warning such a view logs (its watch Forbidden) always does.
const fleetWindow = 5 * time.Second

// TestE2EFleetRulesAreNeeded gives a fleet's replicas, as a service
// account, Rules(false) and FleetRules less one grant at a time: the
// fleet scenario then fails, and with every rule it passes.
func TestE2EFleetRulesAreNeeded(t *testing.T) {
	t.Parallel()
	rules := append(Rules(false), FleetRules()...)
	groups := map[string]string{"leases": "coordination.k8s.io", "jobs": "batch"}
	cases := []grant{{}} // all granted
	cases = append(cases, grants(FleetRules())...)
	for _, g := range cases {
		name := "with every rule"
		if g != (grant{}) {
			name = "without " + g.String()
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ns := cluster.NewNamespace(t)
			less := rules
			if g != (grant{}) {
				less = without(rules, g)
			}
			client, token := deployAccount(t, ns, less)
			waitFor(t, "RBAC to apply", func() bool {
				for _, r := range grants(FleetRules()) {
					ok, _, err := mayI(t.Context(), client, Permission{Namespace: ns, Verb: r.verb, Group: groups[r.resource], Resource: r.resource})
					if err != nil || ok != (r != g) {
						return false
					}
				}
				return true
			})
			err := fleetScenario(t, token, ns, false)
			if g == (grant{"leases", "list"}) || g == (grant{}) {
				// The informer streams its first list through the
				// watch: list is for an API server or gateway that
				// refuses that.
				err = errors.Join(err, fleetScenario(t, token, ns, true))
			}
			switch {
			case g == (grant{}) && err != nil:
				t.Errorf("with every rule: %v", err)
			case g != (grant{}) && err == nil:
				t.Errorf("a fleet replica needs %s, but did everything without it", g)
			default:
				t.Logf("%s: %v", name, err)
			}
		})
	}
}

// fleetAccountReplica builds, not started, a fleet replica named
// identity in ns, acting as the account of token through the fault
// proxy, on the fate template, with short Leases; its warnings go to
// warnings.
func fleetAccountReplica(t *testing.T, token, ns, identity string, d *deliveries, warnings *warnLog) *Worker {
	t.Helper()
	cfg := cluster.Proxy().Config(token)
	cfg.UserAgent = identity + "-" + ns
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Name: "fleet", Namespace: ns, Template: jobtest.FateTemplate(), Retry: fastRetry,
		RetainUntilRecorded: true, Logger: slog.New(warnings),
		Fleet: Fleet{
			Enabled: true, Sink: d.sink(identity), Identity: identity,
			LeaseDuration: fleetRulesLease, RenewDeadline: fleetRulesRenew, RetryPeriod: fleetRulesRetry,
			Resync: fleetRulesRefresh,
		},
	}
	opts.Parts.Identity = clusterid.New(client, clusterid.Options{UID: "test-uid"})
	w, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// fleetScenario is what two replicas, a and b, of a fleet do as the
// account: both join (Start: get and create on their Leases); a starts a
// run that goes on for a while; for fleetWindow both stay the members
// they joined as (update: their renewals), the run stays a's and, unless
// the Lease watch is refused, each replica's view shows the other
// throughout (watch); a stops while the run goes on (Close gives its
// Lease up: delete); b takes the run over (an update of the Job's owner)
// and its Sink gets the run's Result. Nothing is logged as a warning.
//
// With refuseWatch the proxy refuses every watch of Leases in ns, so the
// members views live on lists: they lag, which the scenario then allows.
func fleetScenario(t *testing.T, token, ns string, refuseWatch bool) error {
	t.Helper()
	runID := "fleet-rules"
	if refuseWatch {
		runID += "-lists"
		undo := cluster.Proxy().Refuse(func(r *http.Request) bool {
			return strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/leases") && r.URL.Query().Get("watch") == "true"
		})
		defer undo()
	}
	var d deliveries
	warnings := &warnLog{}
	a := fleetAccountReplica(t, token, ns, "a", &d, warnings)
	b := fleetAccountReplica(t, token, ns, "b", &d, warnings)
	defer func() { _ = a.Close(context.Background()) }()
	defer func() { _ = b.Close(context.Background()) }()

	// Without get or create on Leases, Join waits for its ctx.
	sctx, scancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer scancel()
	for _, w := range []*Worker{a, b} {
		if err := w.Start(sctx); err != nil {
			return fmt.Errorf("Start: %w", err)
		}
	}
	ma, _, err := a.fleet.current()
	if err != nil {
		return fmt.Errorf("a: %w", err)
	}
	mb, _, err := b.fleet.current()
	if err != nil {
		return fmt.Errorf("b: %w", err)
	}

	pid := make(chan clusterid.PID, 1)
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		_, runErr = a.Run(context.Background(), RunSpec{ID: runID, Values: fate(map[string]string{
			tc.AnnotationDelay: "12s", tc.AnnotationExitCode: "3",
		}, "backoff_limit", 0), Started: func(p clusterid.PID) { pid <- p }})
	}()
	var job clusterid.PID
	select {
	case job = <-pid:
	case <-done:
		return fmt.Errorf("a's run ended before its Job existed: %w", runErr)
	case <-time.After(30 * time.Second):
		return errors.New("a's run made no Job in 30s")
	}

	if err := fleetWindowHolds(t, a, b, ma, mb, done, !refuseWatch); err != nil {
		return errors.Join(err, warnings.err())
	}
	got, err := adminClient(t).BatchV1().Jobs(ns).Get(t.Context(), job.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if owner := got.Annotations[jobcreate.AnnotationOwner]; !refuseWatch && owner != ma.Name() {
		return fmt.Errorf("the Job of a's run is owned by %q while a is live; want %q", owner, ma.Name())
	}

	cctx, ccancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer ccancel()
	if err := a.Close(cctx); err != nil {
		return fmt.Errorf("a's Close: %w", err)
	}
	<-done
	if !refuseWatch && !errors.Is(runErr, ErrClosed) {
		return fmt.Errorf("a's Run after its Close: %v; want ErrClosed", runErr)
	}
	// The pod ends 12 s after it started, and b has its Result then if
	// it took the run over.
	var dl []delivery
	_ = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		dl = d.of(runID)
		return len(dl) > 0, nil
	})
	switch {
	case len(dl) == 0:
		owner := "?"
		if got, err := adminClient(t).BatchV1().Jobs(ns).Get(t.Context(), job.Name, metav1.GetOptions{}); err == nil {
			owner = got.Annotations[jobcreate.AnnotationOwner]
		}
		return errors.Join(fmt.Errorf("no replica delivered the run after a stopped; its Job's owner: %s", owner), warnings.err())
	case len(dl) != 1 || dl[0].replica != "b" || dl[0].res.ExitCode != 3:
		return fmt.Errorf("deliveries %+v; want one, by b, with exit code 3", dl)
	}
	return errors.Join(b.Close(cctx), warnings.err())
}

// fleetWindowHolds checks, for fleetWindow, that a and b stay the
// members ma and mb; with views, also that a's run (done) goes on and,
// once each replica's view shows the other, that it always does.
func fleetWindowHolds(t *testing.T, a, b *Worker, ma, mb *fleet.Member, done <-chan struct{}, views bool) error {
	t.Helper()
	sees := func() error {
		if !slices.Contains(ma.Members(), mb.Name()) {
			return fmt.Errorf("a's view %v lacks b, a live member", ma.Members())
		}
		if !slices.Contains(mb.Members(), ma.Name()) {
			return fmt.Errorf("b's view %v lacks a, a live member", mb.Members())
		}
		return nil
	}
	if views {
		var last error
		if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
			last = sees()
			return last == nil, nil
		}); err != nil {
			return fmt.Errorf("the replicas' views never showed each other: %w", last)
		}
	}
	end := time.Now().Add(fleetWindow)
	for time.Now().Before(end) {
		for _, r := range []struct {
			name string
			w    *Worker
			m    *fleet.Member
		}{{"a", a, ma}, {"b", b, mb}} {
			if m, _, _ := r.w.fleet.current(); m != r.m {
				return fmt.Errorf("%s did not stay the member %s (its renewals): %v", r.name, r.m.Name(), r.m.Err())
			}
		}
		if !views {
			// b's view may lose a between relists, and take its run.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		select {
		case <-done:
			return errors.New("a's run ended while a was a member")
		default:
		}
		if err := sees(); err != nil {
			return fmt.Errorf("the members view lags: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

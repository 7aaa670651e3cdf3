// Package fleet is the membership of a worker's replicas: each replica
// holds its own Kubernetes Lease, watches the others', and agrees with
// them, by rendezvous hashing, which member owns which run. It uses
// Kubernetes primitives only (Leases, resourceVersion preconditions,
// watches); there is no consensus of its own and no leader.
//
//	m, err := fleet.Join(ctx, clientset, fleet.Options{Namespace: ns, Worker: "etl"})
//	if err != nil {
//		return err
//	}
//	defer m.Leave(context.Background()) // after the work has stopped
//	for {
//		select {
//		case <-m.Lost():
//			return m.Err() // stop acting on runs at once; Join again later
//		case <-m.Changes():
//			for _, run := range runs {
//				if m.Owner(run.ID) == m.Name() {
//					// this replica's run: adopt it if its owner departed
//				}
//			}
//		}
//	}
//
// # A Lease per replica
//
// [Join] creates, or takes over once expired, the Lease
// "<Worker>-<Identity>" in [Options.Namespace], labelled [LabelWorker] =
// Worker, and renews it every RetryPeriod with client-go's leader election
// (tools/leaderelection and resourcelock.LeaseLock): each replica is the
// only candidate for its own lock. The Lease's holderIdentity is the
// member's [Member.Name], "<Identity>/<incarnation>", the incarnation
// being random and new for each Join: a replica that lost its Lease and
// joins again is a new member, and to the others its old incarnation has
// departed.
//
// # The members view
//
// Each member runs one informer on the fleet's Leases (one list, then one
// watch connection, relisting after 410 Gone or a dropped connection, as
// client-go does). A member is live until its Lease is deleted or released
// or until its holder, renewTime and leaseDurationSeconds have not changed
// for leaseDurationSeconds as measured on the watching replica's clock:
// like client-go's leader election, a replica compares another's renewTime
// but never trusts it, so clock offsets between replicas do not matter. A
// local timer set at the next expiry drops a member that stopped renewing
// even when no watch event comes, and signals [Member.Changes]. A Lease
// already present when the view starts counts as renewed then: a replica
// that died before this one started is dropped one lease duration later.
//
// [Member.Owner] and the pure [Owner] give each run to the live member of
// highest rendezvous weight for its run ID, so every replica with the same
// view agrees, and when a member departs only its runs move, spread over
// the survivors. Views differ briefly while events travel: ownership is
// advice, and the writes that act on it (to a Job's owner annotation, with
// a resourceVersion precondition) are what decide.
//
// # Fencing
//
// A member stops counting itself as one ([Member.Lost] is closed and
// [Member.Err] wraps [ErrLost]) when:
//
//   - RenewDeadline has passed since the start of its last successful
//     renewal (a local timer, whatever client-go's loop is doing): with
//     its connection to the API server cut or the server failing. Others
//     drop it no earlier than LeaseDuration after that renewal reached the
//     server, so this member knows first, by LeaseDuration -
//     RenewDeadline, provided clocks run at about the same rate;
//   - its view, or a renewal, shows its Lease deleted, released, or held
//     by another holder;
//   - client-go's renewal loop ends for any other reason.
//
// A lost member never renews or recreates its Lease again; to come back,
// the replica calls Leave (to stop the member's goroutines and, if it can
// and still holds it, delete the Lease) and then Join, as a new member.
// Join takes over the Lease from an earlier incarnation that still holds
// it only after seeing it expire. Fencing by time assumes that a
// replica's process is not paused for longer than LeaseDuration -
// RenewDeadline between checking Lost and acting; the preconditions on
// its writes are what protect the runs when that fails.
//
// [Member.Leave] is the clean stop (SIGTERM, a rolling update): it closes
// Lost, stops renewing and deletes the Lease (preconditioned on the
// Lease's UID and resourceVersion, only if this member still holds it),
// so the others see the departure at once by their watch and take over
// its runs without waiting for an expiry.
//
// # Timing
//
// Defaults follow client-go's core components: LeaseDuration 15 s,
// RenewDeadline 10 s, RetryPeriod 2 s. The others drop a crashed member
// LeaseDuration after they saw its last renewal, so at most LeaseDuration
// after the crash; a member that left, as soon as the Delete event
// arrives. A member lost by a cut connection knows it RenewDeadline after
// its last renewal began. Each member costs one Lease update per
// RetryPeriod, which every member's watch receives.
//
// # RBAC
//
// On leases in the coordination.k8s.io API group, in the namespace:
//
//   - get, create, update: to take and renew the Lease (client-go's leader
//     election), and get in Leave before the delete. Without get or
//     create Join never succeeds; without update the member is lost one
//     RenewDeadline after joining;
//   - delete: Leave, and a failed Join, delete their own Lease; without
//     it Leave fails with Forbidden and the others wait for the Lease to
//     expire;
//   - list, watch: the members view (label selector
//     kubeworker.io/worker=<Worker>). client-go streams the informer's
//     initial list through the watch (its WatchListClient feature, on by
//     default) and lists only when the API server cannot; without watch
//     the informer relists after every refused watch, backing off up to
//     half a minute, and the view lags (a warning is logged).
//
// As a Role rule:
//
//	rules:
//	- apiGroups: ["coordination.k8s.io"]
//	  resources: ["leases"]
//	  verbs: ["get", "create", "update", "delete", "list", "watch"]
//
// No patch, no deletecollection, no cluster-scoped rule. The Lease names
// are not known in advance (one per replica), so the rule cannot be
// narrowed by resourceNames. No Events are recorded (client-go's leader
// election is given no EventRecorder).
package fleet

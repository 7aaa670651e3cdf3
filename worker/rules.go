package worker

import rbacv1 "k8s.io/api/rbac/v1"

// Rules returns the RBAC rules a worker needs in the namespace its Jobs run
// in, and nothing more: Jobs to create, get (adopting a run's Job, also
// after an ambiguous create), list and watch (the shared Job stream, List
// and Sweep), delete (Kill) and patch (the TTL put back under
// Options.RetainUntilRecorded); pods to follow and their logs, and to
// delete (Cancel's grace period and force, for pods stuck terminating); events
// to list (explaining a pod that did not start; a cancel's Event) and to
// create (the Event a cancel leaves); and, if secrets, Secrets to hold
// secret values.
func Rules(secrets bool) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "list", "watch", "delete", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list", "create"}},
	}
	if secrets {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update", "delete"}})
	}
	return rules
}

// FleetRules returns the RBAC rules a replica of a fleet (Options.Fleet)
// needs besides [Rules]:
//   - on leases (coordination.k8s.io), in the namespace of the fleet's
//     Leases: get, create and update to take its own Lease and renew it
//     (client-go's leader election; get also reads it before Close deletes
//     it); delete, for Close to give the Lease up, so the other replicas
//     take its runs over at once instead of after the Lease expires; list
//     and watch for the members view, an informer on the fleet's Leases.
//     Without watch the view lives on relists that back off up to half a
//     minute, and the live members it shows come and go; list is for an
//     API server or gateway that will not stream the informer's first
//     list through a watch (client-go asks for that first).
//   - on jobs, in the namespace the Jobs run in: update, to claim a
//     departed replica's Job (its owner annotation, with the Job's
//     resourceVersion as precondition). The mark of a delivered run is a
//     patch, which Rules grants.
//
// The Leases go in Options.Fleet.Namespace, by default Options.Namespace:
// the Job namespace, and then one Role holds Rules and FleetRules, as
// install.DeploymentManifest writes it. A fleet whose Leases live
// elsewhere needs the leases rule in a Role of that namespace and the
// jobs rule in the Job namespace's.
func FleetRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update", "delete", "list", "watch"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"update"}},
	}
}

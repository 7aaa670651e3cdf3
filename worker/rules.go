package worker

import rbacv1 "k8s.io/api/rbac/v1"

// Rules returns the RBAC rules a worker needs in the namespace its Jobs run
// in, and nothing more: Jobs to create, get (adopting a run's Job, also
// after an ambiguous create), list and watch (the shared Job stream, List
// and Sweep), delete (Kill) and patch (the TTL put back under
// Options.RetainUntilRecorded); pods to follow and their logs; events
// to explain a pod that did not start; and, if secrets, Secrets to hold
// secret values.
func Rules(secrets bool) []rbacv1.PolicyRule {
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create", "get", "list", "watch", "delete", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"list"}},
	}
	if secrets {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update", "delete"}})
	}
	return rules
}

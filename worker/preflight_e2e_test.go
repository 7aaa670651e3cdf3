package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

// preflightIdentity creates, as the admin, service account "pf" in ns
// with a Role of rules bound to it, and returns a client acting as it.
func preflightIdentity(t *testing.T, ns string, rules []rbacv1.PolicyRule) kubernetes.Interface {
	t.Helper()
	ctx := t.Context()
	token, err := cluster.ServiceAccountToken(ctx, ns, "pf")
	if err != nil {
		t.Fatal(err)
	}
	admin := adminClient(t)
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "pf"}, Rules: rules}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pf"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pf"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "pf", Namespace: ns}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cluster.TokenConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// preflightWorker returns a Worker for ns acting as client, closed when
// the test ends; the cluster UID is given, as the manifest's env var
// would give it.
func preflightWorker(t *testing.T, client kubernetes.Interface, ns string, opts Options) *Worker {
	t.Helper()
	opts.Namespace = ns
	opts.Parts.Identity = clusterid.New(client, clusterid.Options{UID: "test-uid"})
	w, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// preflightUntil runs Preflight until settled(report) (RBAC and quota
// take a moment to reach the API server's caches), at most 30 s, and
// returns the last report.
func preflightUntil(t *testing.T, w *Worker, opts PreflightOptions, settled func(*PreflightReport) bool) *PreflightReport {
	t.Helper()
	var rep *PreflightReport
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		rep, err = w.Preflight(ctx, opts)
		if err != nil {
			return false, err
		}
		return settled(rep), nil
	})
	if err != nil {
		t.Fatalf("preflight did not settle: %v; last report %+v", err, rep)
	}
	return rep
}

func TestPreflightOfAHealthySetupReportsNothing(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	client := preflightIdentity(t, ns, Rules(true))
	w := preflightWorker(t, client, ns, Options{Secrets: SecretsOptions{Env: true}})
	rep := preflightUntil(t, w, PreflightOptions{}, func(r *PreflightReport) bool { return len(r.Missing) == 0 })
	if !rep.OK() || rep.Err() != nil || len(rep.Rejections) != 0 || len(rep.Warnings) != 0 {
		t.Errorf("report %+v, err %v", rep, rep.Err())
	}
	if !slices.Equal(rep.Namespaces, []string{ns}) {
		t.Errorf("checked namespaces %v, want [%s]", rep.Namespaces, ns)
	}
	// The worker's Role does not grant reading service accounts: the
	// report says what it could not check, without calling it a problem.
	if len(rep.Unchecked) != 1 || !strings.Contains(rep.Unchecked[0], `service account "default"`) {
		t.Errorf("Unchecked %q", rep.Unchecked)
	}
}

func TestPreflightNamesTheOnePermissionMissing(t *testing.T) {
	t.Parallel()
	rules := Rules(true)
	for _, r := range rules {
		for _, res := range r.Resources {
			for _, verb := range r.Verbs {
				t.Run("without "+res+" "+verb, func(t *testing.T) {
					t.Parallel()
					ns := cluster.NewNamespace(t)
					less := withoutVerb(rules, res, verb)
					w := preflightWorker(t, preflightIdentity(t, ns, less), ns, Options{Secrets: SecretsOptions{Env: true}})
					resource, sub, _ := strings.Cut(res, "/")
					want := Permission{Namespace: ns, Verb: verb, Group: r.APIGroups[0], Resource: resource, Subresource: sub}
					rep := preflightUntil(t, w, PreflightOptions{}, func(r *PreflightReport) bool {
						return len(r.Missing) == 1 // the Role's other verbs have reached the authorizer
					})
					got := rep.Missing[0]
					got.Reason = ""
					if got != want {
						t.Errorf("missing %v, want exactly %v", rep.Missing, want)
					}
					if !errors.Is(rep.Err(), ErrPreflight) || !strings.Contains(rep.Err().Error(), want.String()) {
						t.Errorf("Err() = %v", rep.Err())
					}
				})
			}
		}
	}
}

// withoutVerb returns rules less one verb on one resource.
func withoutVerb(rules []rbacv1.PolicyRule, resource, verb string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		r = *r.DeepCopy()
		if slices.Contains(r.Resources, resource) {
			r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == verb })
		}
		if len(r.Verbs) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// privileged makes the run container privileged.
var privileged = []byte(`[{"op": "add", "path": "/spec/template/spec/containers/0/securityContext", "value": {"privileged": true}}]`)

func labelNamespace(t *testing.T, ns string, labels map[string]string) {
	t.Helper()
	var parts []string
	for k, v := range labels {
		parts = append(parts, fmt.Sprintf("%q:%q", k, v))
	}
	patch := []byte(`{"metadata":{"labels":{` + strings.Join(parts, ",") + `}}}`)
	if _, err := adminClient(t).CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPreflightPodSecurityRestrictedRefusesAPrivilegedTemplate(t *testing.T) {
	t.Parallel()
	t.Run("enforced, as the admin who can read the namespace", func(t *testing.T) {
		t.Parallel()
		ns := cluster.NewNamespace(t)
		labelNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		w := preflightWorker(t, adminClient(t), ns, Options{Prepare: manifest.PrepareOptions{Customizations: privileged}})
		rep, err := w.Preflight(t.Context(), PreflightOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rejections) != 1 {
			t.Fatalf("rejections %+v", rep.Rejections)
		}
		r := rep.Rejections[0]
		if r.Object != "Pod" || r.Reason != metav1.StatusReasonForbidden || !strings.Contains(r.Message, `would violate PodSecurity "restricted:latest"`) ||
			!strings.Contains(r.Message, "privileged") || !strings.Contains(r.Hint, `enforces Pod Security "restricted"`) {
			t.Errorf("rejection %+v", r)
		}
		t.Log(r)
	})
	t.Run("enforced, as the worker who cannot read it", func(t *testing.T) {
		t.Parallel()
		ns := cluster.NewNamespace(t)
		labelNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
		w := preflightWorker(t, preflightIdentity(t, ns, Rules(false)), ns, Options{Prepare: manifest.PrepareOptions{Customizations: privileged}})
		rep := preflightUntil(t, w, PreflightOptions{}, func(r *PreflightReport) bool { return len(r.Missing) == 0 })
		if len(rep.Rejections) != 1 || rep.Rejections[0].Object != "Pod" || !strings.Contains(rep.Rejections[0].Hint, "may enforce") {
			t.Errorf("rejections %+v", rep.Rejections)
		}
	})
	t.Run("only warned of, not enforced", func(t *testing.T) {
		t.Parallel()
		ns := cluster.NewNamespace(t)
		labelNamespace(t, ns, map[string]string{"pod-security.kubernetes.io/warn": "restricted"})
		w := preflightWorker(t, adminClient(t), ns, Options{Prepare: manifest.PrepareOptions{Customizations: privileged}})
		rep, err := w.Preflight(t.Context(), PreflightOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Rejections) != 0 || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "would violate PodSecurity") || !rep.OK() {
			t.Errorf("report %+v", rep)
		}
	})
}

func TestPreflightReportsAResourceQuotaUsedUpInAdvance(t *testing.T) {
	t.Parallel()
	ns := cluster.NewNamespace(t)
	admin := adminClient(t)
	// Use the quota up in advance with a Job that never runs, made before
	// the quota, so that the quota controller counts it when it first fills
	// in the quota's status. Made after it, the Job would race the quota:
	// the API server admits it free of charge while its own quota cache
	// does not hold the quota yet, and the quota controller, which recounts
	// Jobs only when one is deleted (or every --resource-quota-sync-period,
	// 5 minutes), may have counted before the Job existed; status.used then
	// stays 0 and further Jobs are admitted.
	held := preparedJob(t, ns, "held", nil)
	held.Spec.Suspend = new(true)
	held, err := admin.BatchV1().Jobs(ns).Create(t.Context(), held, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create the Job that uses the quota up: %v", err)
	}
	// The Job controller marks it suspended once the controller manager's
	// shared Job cache, which the quota controller counts, holds it.
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		j, err := admin.BatchV1().Jobs(ns).Get(ctx, held.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(j.Status.Conditions, func(c batchv1.JobCondition) bool {
			return c.Type == batchv1.JobSuspended && c.Status == corev1.ConditionTrue
		}), nil
	})
	if err != nil {
		t.Fatalf("wait for the Job controller to see the held Job: %v", err)
	}
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "one-job"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("1")}},
	}
	if _, err := admin.CoreV1().ResourceQuotas(ns).Create(t.Context(), quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		q, err := admin.CoreV1().ResourceQuotas(ns).Get(ctx, quota.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		used, ok := q.Status.Used["count/jobs.batch"]
		return ok && used.Cmp(resource.MustParse("1")) == 0, nil
	})
	if err != nil {
		t.Fatalf("wait for the quota's status.used to count the held Job: %v", err)
	}
	client := preflightIdentity(t, ns, Rules(false))
	w := preflightWorker(t, client, ns, Options{})
	// Settled once the API server's quota cache holds that status: until
	// then the dry run is admitted, or refused as "status unknown".
	rep := preflightUntil(t, w, PreflightOptions{}, func(r *PreflightReport) bool {
		return len(r.Missing) == 0 && slices.ContainsFunc(r.Rejections, func(j Rejection) bool {
			return strings.Contains(j.Message, "exceeded quota")
		})
	})
	if len(rep.Rejections) != 1 {
		t.Fatalf("rejections %+v", rep.Rejections)
	}
	r := rep.Rejections[0]
	if r.Object != "Job" || r.Reason != metav1.StatusReasonForbidden || !strings.Contains(r.Message, "exceeded quota: one-job") || r.Err == nil {
		t.Errorf("rejection %+v", r)
	}
	// The same hint as creating the Job for real.
	_, cerr := NewCreator(client, CreateOptions{Retry: retry.Policy{Attempts: 1}}).Create(t.Context(), preparedJob(t, ns, "real", nil))
	var ce *CreateError
	if !errors.As(cerr, &ce) || ce.Hint == "" || ce.Hint != r.Hint {
		t.Errorf("dry-run hint %q; creation's %q (%v)", r.Hint, ce.Hint, cerr)
	}
	if rep.OK() || !errors.Is(rep.Err(), ErrPreflight) {
		t.Errorf("OK() %v, Err() %v", rep.OK(), rep.Err())
	}
}

func TestPreflightReportsAMissingServiceAccountAndChecksEveryNamespace(t *testing.T) {
	t.Parallel()
	ns, other := cluster.NewNamespace(t), cluster.NewNamespace(t)
	w := preflightWorker(t, adminClient(t), ns, Options{ServiceAccount: "robot"})
	rep, err := w.Preflight(t.Context(), PreflightOptions{Namespaces: []string{other, ns}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Namespaces, []string{ns, other}) {
		t.Errorf("namespaces %v, want [%s %s]", rep.Namespaces, ns, other)
	}
	if len(rep.Rejections) != 2 {
		t.Fatalf("rejections %+v", rep.Rejections)
	}
	for i, r := range rep.Rejections {
		if r.Namespace != rep.Namespaces[i] || r.Object != "Pod" || r.Reason != metav1.StatusReasonNotFound || !strings.Contains(r.Hint, `service account "robot"`) {
			t.Errorf("rejection %+v", r)
		}
	}
	// Nothing was created.
	jobs, err := adminClient(t).BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 0 {
		t.Errorf("%d Jobs after a preflight (%v)", len(jobs.Items), err)
	}
}

package clustertest

import (
	"context"
	"slices"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestProxyKeepsATokenIdentityAndItsRBAC(t *testing.T) {
	t.Parallel()
	admin, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	token, err := cluster.ServiceAccountToken(t.Context(), ns, "runner")
	if err != nil {
		t.Fatal(err)
	}
	runner := newClient(t, cluster.Proxy().Config(token))
	review, err := runner.AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := review.Status.UserInfo.Username, "system:serviceaccount:"+ns+":runner"; got != want {
		t.Errorf("user through the proxy %q, want %q", got, want)
	}
	if _, err := runner.BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list jobs without a role: %v, want Forbidden", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "runner-edit"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "runner", Namespace: ns}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edit role to let the runner create Jobs", func(ctx context.Context) (bool, error) {
		_, err := runner.BatchV1().Jobs(ns).Create(ctx, newJob(nil), metav1.CreateOptions{})
		return err == nil, err
	})
	if _, err := runner.BatchV1().Jobs("default").List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list jobs in another namespace: %v, want Forbidden", err)
	}
}

func TestUserConfigIsACertificateIdentity(t *testing.T) {
	t.Parallel()
	conf, err := cluster.UserConfig("alice", "team-a")
	if err != nil {
		t.Fatal(err)
	}
	review, err := newClient(t, conf).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := review.Status.UserInfo; got.Username != "alice" || !slices.Contains(got.Groups, "team-a") {
		t.Errorf("user %q groups %v, want alice in team-a", got.Username, got.Groups)
	}
}

func TestProxyForwardsImpersonation(t *testing.T) {
	t.Parallel()
	conf := cluster.ProxyConfig()
	conf.Impersonate.UserName = "bob"
	conf.Impersonate.Groups = []string{"team-b"}
	review, err := newClient(t, conf).AuthenticationV1().SelfSubjectReviews().Create(t.Context(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := review.Status.UserInfo; got.Username != "bob" || !slices.Contains(got.Groups, "team-b") {
		t.Errorf("user %q groups %v through the proxy, want bob in team-b", got.Username, got.Groups)
	}
}

package clustertest

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// UserConfig returns a rest.Config for a user the API server knows by a
// client certificate minted from the cluster CA: CN is user, O are groups.
// The user has no rights until a test binds roles to it; RBAC is real. A
// client certificate cannot pass the fault proxy, which ends TLS: for an
// identity that must, use [Cluster.ServiceAccountToken].
func (c *Cluster) UserConfig(user string, groups ...string) (*rest.Config, error) {
	kp, err := c.files.ca.client(user, groups...)
	if err != nil {
		return nil, err
	}
	return certConfig(c.config.Host, c.files.ca.certPEM, kp), nil
}

// ServiceAccountToken creates the service account namespace/name if it
// does not exist and returns a token for it, valid for 24 hours, through
// the TokenRequest API. The account's user name is
// system:serviceaccount:NAMESPACE:NAME. Use the token with
// [Cluster.TokenConfig] or, through the proxy, [Proxy.Config].
func (c *Cluster) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	accounts := c.client.CoreV1().ServiceAccounts(namespace)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := accounts.Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(24 * 60 * 60))}}
	tr, err := accounts.CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token for %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// TokenConfig returns a rest.Config that authenticates with token and
// talks to the API server directly.
func (c *Cluster) TokenConfig(token string) *rest.Config {
	return tokenConfig(c.config.Host, c.files.ca.certPEM, token)
}

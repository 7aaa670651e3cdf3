package kubeconfig

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// What Options.Untrusted refuses, from clientcmd's api.AuthInfo
// (users[].user) and api.Cluster (clusters[].cluster) at client-go
// v0.37; TestUntrustedCoversEveryField fails when client-go adds a field.
//
//   - Refused: exec and auth-provider run code on the worker's host;
//     clientcmd reads tokenFile, and opens client-certificate,
//     client-key and certificate-authority, on the worker's disk;
//     proxy-url sends the traffic through a host of the run's choosing.
//   - Allowed: token, username, password and the *-data forms are data;
//     as, as-uid, as-groups and as-user-extra (impersonation) are headers
//     to the run's own server; server, tls-server-name,
//     insecure-skip-tls-verify and disable-compression change only the
//     run's own connection.
//   - extensions stay raw data. The one client-go reads
//     (client.authentication.k8s.io/exec on a cluster) only feeds exec.
//   - LocationOfOrigin (and ExecConfig's Config, PluginPolicy and
//     StdinUnavailable) are json:"-": no kubeconfig sets them.
//   - Contexts only name entries; preferences are unused.
var (
	userRefusals = []refusal[clientcmdapi.AuthInfo]{
		{"auth-provider", func(u *clientcmdapi.AuthInfo) bool { return u.AuthProvider != nil }, untrusted + "use an auth-provider plugin; " + giveIt},
		{"client-certificate", func(u *clientcmdapi.AuthInfo) bool { return u.ClientCertificate != "" }, readsFiles + "client-certificate-data instead"},
		{"client-key", func(u *clientcmdapi.AuthInfo) bool { return u.ClientKey != "" }, readsFiles + "client-key-data instead"},
		{"exec", func(u *clientcmdapi.AuthInfo) bool { return u.Exec != nil }, untrusted + "run a command; " + giveIt},
		{"tokenFile", func(u *clientcmdapi.AuthInfo) bool { return u.TokenFile != "" }, readsFiles + "token instead"},
	}
	clusterRefusals = []refusal[clientcmdapi.Cluster]{
		{"certificate-authority", func(c *clientcmdapi.Cluster) bool { return c.CertificateAuthority != "" }, readsFiles + "certificate-authority-data instead"},
		{"proxy-url", func(c *clientcmdapi.Cluster) bool { return c.ProxyURL != "" }, untrusted + "send traffic through a proxy; " + giveIt},
	}
)

const (
	untrusted  = "a kubeconfig from a run's values may not "
	giveIt     = "give this cluster in the worker's options instead"
	readsFiles = untrusted + "read the worker's files; use "
)

// refusal is one field of a T that Untrusted refuses.
type refusal[T any] struct {
	key string // the field's name in the kubeconfig
	set func(*T) bool
	why string
}

// refuseUnsafe returns an *UntrustedError for every refused field set in
// any entry of cfg, used or not, sorted by Field.
func refuseUnsafe(cfg *clientcmdapi.Config) []error {
	var found []*UntrustedError
	for name, u := range cfg.AuthInfos {
		found = appendRefused(found, "users", name, "user", u, userRefusals)
	}
	for name, c := range cfg.Clusters {
		found = appendRefused(found, "clusters", name, "cluster", c, clusterRefusals)
	}
	slices.SortFunc(found, func(a, b *UntrustedError) int { return strings.Compare(a.Field, b.Field) })
	errs := make([]error, len(found))
	for i, e := range found {
		errs[i] = e
	}
	return errs
}

// appendRefused adds entry's refused fields, entry being list[name].kind.
func appendRefused[T any](found []*UntrustedError, list, name, kind string, entry *T, refusals []refusal[T]) []*UntrustedError {
	if entry == nil {
		return found
	}
	for _, r := range refusals {
		if r.set(entry) {
			found = append(found, &UntrustedError{Field: entryPath(list, name) + "." + kind + "." + r.key, why: r.why})
		}
	}
	return found
}

// entryPath names an entry of a kubeconfig list by its quoted name, the
// key clientcmd holds it by (it refuses duplicate names).
func entryPath(list, name string) string { return list + "[" + strconv.Quote(name) + "]" }

// errNoKubeconfig is Load's error for Untrusted options without one.
var errNoKubeconfig = fmt.Errorf("%w: no Kubeconfig or KubeconfigMap given; untrusted input never falls back to the worker's own config", ErrUntrusted)

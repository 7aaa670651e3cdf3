package clustertest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
)

// files are a cluster's credentials and configuration, written into its
// working directory before anything starts.
type files struct {
	dir        string
	ca         *certAuthority
	adminToken string
	adminCert  keyPair

	caFile, tokenFile                   string
	apiCert, apiKey                     string
	saKey, saPub                        string
	kubeletClientCert, kubeletClientKey string
	kcmCert, kcmKey                     string
	schedCert, schedKey                 string
	kwokCert, kwokKey                   string
	proxyClientCert, proxyClientKey     string
	stagesFile                          string
	adminKubeconfig                     string
	kcmKubeconfig                       string
	schedKubeconfig                     string
	kwokKubeconfig                      string
}

// writeFiles makes the PKI (one CA; serving certificates for 127.0.0.1;
// client certificates for the admin, the controller manager, the
// scheduler, kwok, and the API server's kubelet and front-proxy clients; a service-account
// signing key), the admin token file, kwok's stages, and a kubeconfig per
// client, all pointing at apiURL.
func writeFiles(dir, apiURL string) (*files, error) {
	ca, err := newCertAuthority()
	if err != nil {
		return nil, err
	}
	f := &files{dir: dir, ca: ca, adminToken: randomToken()}
	if err := os.MkdirAll(f.path("pki"), 0o700); err != nil {
		return nil, fmt.Errorf("make pki directory: %w", err)
	}
	var errs []error
	write := func(name string, data []byte) string {
		path := f.path("pki", name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			errs = append(errs, fmt.Errorf("write %s: %w", path, err))
		}
		return path
	}
	f.caFile = write("ca.crt", ca.certPEM)
	pairs := []struct {
		name      string
		cert, key *string
		issue     func() (keyPair, error)
	}{
		{"kube-apiserver", &f.apiCert, &f.apiKey, func() (keyPair, error) {
			return ca.serving("kube-apiserver", loopback, "localhost", "kubernetes", "kubernetes.default",
				"kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
		}},
		{"kube-controller-manager", &f.kcmCert, &f.kcmKey, func() (keyPair, error) {
			return ca.serving("kube-controller-manager", loopback, "localhost")
		}},
		{"kube-scheduler", &f.schedCert, &f.schedKey, func() (keyPair, error) {
			return ca.serving("kube-scheduler", loopback, "localhost")
		}},
		{"kwok", &f.kwokCert, &f.kwokKey, func() (keyPair, error) {
			return ca.serving("kwok", loopback, "localhost")
		}},
		{"kubelet-client", &f.kubeletClientCert, &f.kubeletClientKey, func() (keyPair, error) {
			return ca.client("kube-apiserver-kubelet-client", "system:masters")
		}},
		{"front-proxy-client", &f.proxyClientCert, &f.proxyClientKey, func() (keyPair, error) {
			return ca.client(frontProxyClient)
		}},
	}
	for _, p := range pairs {
		kp, err := p.issue()
		if err != nil {
			return nil, err
		}
		*p.cert, *p.key = write(p.name+".crt", kp.certPEM), write(p.name+".key", kp.keyPEM)
	}
	private, public, err := signingKey()
	if err != nil {
		return nil, err
	}
	f.saKey, f.saPub = write("sa.key", private), write("sa.pub", public)
	f.tokenFile = write("tokens.csv", fmt.Appendf(nil, "%s,admin,admin-uid,system:masters\n", f.adminToken))
	if f.adminCert, err = ca.client("admin", "system:masters"); err != nil {
		return nil, err
	}
	stages, err := stagesConfig()
	if err != nil {
		return nil, err
	}
	f.stagesFile = f.path("stages.yaml")
	if err := os.WriteFile(f.stagesFile, stages, 0o644); err != nil {
		return nil, fmt.Errorf("write stages: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, f.writeKubeconfigs(apiURL)
}

// writeKubeconfigs gives each client its own identity: the admin and kwok
// are system:masters; the controller manager and the scheduler are the
// users their default RBAC roles are bound to.
func (f *files) writeKubeconfigs(apiURL string) error {
	f.adminKubeconfig = f.path("admin.kubeconfig")
	f.kcmKubeconfig = f.path("kube-controller-manager.kubeconfig")
	f.schedKubeconfig = f.path("kube-scheduler.kubeconfig")
	f.kwokKubeconfig = f.path("kwok.kubeconfig")
	clients := []struct {
		path, user string
		groups     []string
	}{
		{f.adminKubeconfig, "admin", []string{"system:masters"}},
		{f.kcmKubeconfig, "system:kube-controller-manager", nil},
		{f.schedKubeconfig, "system:kube-scheduler", nil},
		{f.kwokKubeconfig, "kwok", []string{"system:masters"}},
	}
	for _, c := range clients {
		kp := f.adminCert
		if c.user != "admin" {
			var err error
			if kp, err = f.ca.client(c.user, c.groups...); err != nil {
				return err
			}
		}
		if err := writeKubeconfig(c.path, "testcluster", certConfig(apiURL, f.ca.certPEM, kp)); err != nil {
			return err
		}
	}
	return nil
}

// adminConfig is the admin's rest.Config (client certificate).
func (f *files) adminConfig(apiURL string) *rest.Config {
	return certConfig(apiURL, f.ca.certPEM, f.adminCert)
}

func (f *files) path(parts ...string) string {
	return filepath.Join(append([]string{f.dir}, parts...)...)
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

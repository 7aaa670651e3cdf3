package testcluster

import (
	"crypto/rand"
	"encoding/hex"
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

	caFile, tokenFile                  string
	apiCert, apiKey                    string
	saKey, saPub                       string
	kubeletClientCert, kubeletClientKey string
	kcmCert, kcmKey                    string
	schedCert, schedKey                string
	kwokCert, kwokKey                  string
	stagesFile                         string
	adminKubeconfig                    string
	kcmKubeconfig                      string
	schedKubeconfig                    string
	kwokKubeconfig                     string
}

// writeFiles makes the PKI (one CA; serving certificates for 127.0.0.1;
// client certificates for the admin, the controller manager, the
// scheduler, kwok and the API server's kubelet client; a service-account
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
	pair := func(name string, kp keyPair, err error) (string, string) {
		if err != nil {
			errs = append(errs, err)
			return "", ""
		}
		return write(name+".crt", kp.certPEM), write(name+".key", kp.keyPEM)
	}
	f.caFile = write("ca.crt", ca.certPEM)
	f.apiCert, f.apiKey = pair(ca.serving("kube-apiserver", loopback, "localhost",
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
	f.kcmCert, f.kcmKey = pair(ca.serving("kube-controller-manager", loopback, "localhost"))
	f.schedCert, f.schedKey = pair(ca.serving("kube-scheduler", loopback, "localhost"))
	f.kwokCert, f.kwokKey = pair(ca.serving("kwok", loopback, "localhost"))
	f.kubeletClientCert, f.kubeletClientKey = pair(ca.client("kube-apiserver-kubelet-client", "system:masters"))
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
	if len(errs) > 0 {
		return nil, errs[0]
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

package kubeconfig

import (
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// FuzzLoadUntrusted: Load with Untrusted never panics, and whatever it
// takes has, as clientcmd.Load decodes it, no refused field in any entry
// and nothing in its config that runs code, reads a file or proxies.
func FuzzLoadUntrusted(f *testing.F) {
	f.Add([]byte(twoContexts))
	f.Add(testKubeconfig("", ""))
	f.Add(testKubeconfig("exec: {apiVersion: client.authentication.k8s.io/v1, command: sh, interactiveMode: Never}", ""))
	f.Add(testKubeconfig("auth-provider: {name: oidc}, tokenFile: /t", "proxy-url: http://p"))
	f.Add(testKubeconfig("client-certificate: /c, client-key: /k", "certificate-authority: /ca"))
	f.Add(testKubeconfig("client-certificate-data: "+b64("c")+", client-key-data: "+b64("k"), "certificate-authority-data: "+b64("ca")))
	f.Add([]byte(`{"clusters":[{"name":"c","cluster":{"server":"https://h"}}],"users":[{"name":"u","user":{"exec":{"command":"sh"}}}],` +
		`"contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"}`))
	f.Add([]byte("users: [{name: a, user: {token: t}}, {name: a, user: {token: t}}]"))
	f.Add([]byte("clusters: ["))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(Options{Kubeconfig: data, Untrusted: true})
		if err != nil {
			if cfg != nil {
				t.Fatal("a config with an error")
			}
			return
		}
		raw, err := clientcmd.Load(data)
		if err != nil {
			t.Fatalf("Load took a kubeconfig clientcmd.Load refuses: %v", err)
		}
		for name, u := range raw.AuthInfos {
			if u != nil && (u.Exec != nil || u.AuthProvider != nil || u.TokenFile != "" || u.ClientCertificate != "" || u.ClientKey != "") {
				t.Fatalf("user %q has a refused field: %+v", name, u)
			}
		}
		for name, c := range raw.Clusters {
			if c != nil && (c.CertificateAuthority != "" || c.ProxyURL != "") {
				t.Fatalf("cluster %q has a refused field: %+v", name, c)
			}
		}
		if cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.BearerTokenFile != "" ||
			cfg.CertFile != "" || cfg.KeyFile != "" || cfg.CAFile != "" || cfg.Proxy != nil {
			t.Fatalf("the config runs code, reads a file or proxies: %v", cfg)
		}
	})
}

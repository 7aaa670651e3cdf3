package kubeconfig

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kubeworker/kubeworker/metrics"
)

func TestFingerprint(t *testing.T) {
	load := func(opts Options) *rest.Config {
		t.Helper()
		cfg, err := Load(opts)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	base := load(Options{Kubeconfig: testKubeconfig("", "certificate-authority-data: "+b64("ca"))})
	want := Fingerprint(base)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(want) {
		t.Fatalf("fingerprint %q is not sha256 hex", want)
	}
	same := map[string]*rest.Config{
		"the same kubeconfig loaded again": load(Options{Kubeconfig: testKubeconfig("", "certificate-authority-data: "+b64("ca"))}),
		"other rates, user agent and metrics": load(Options{Kubeconfig: testKubeconfig("", "certificate-authority-data: "+b64("ca")),
			QPS: 1, Burst: 2, UserAgent: "x", Metrics: metrics.Discard{}}),
		"other wrappers and timeout": with(base, func(c *rest.Config) {
			c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return rt })
			c.Timeout = 5
		}),
	}
	for name, cfg := range same {
		if got := Fingerprint(cfg); got != want {
			t.Errorf("%s: fingerprint differs", name)
		}
	}
	proxy, _ := url.Parse("http://proxy:3128")
	differ := map[string]*rest.Config{
		"another token":       with(base, func(c *rest.Config) { c.BearerToken = "other" }),
		"another host":        with(base, func(c *rest.Config) { c.Host = "https://127.0.0.1:7443" }),
		"another CA":          with(base, func(c *rest.Config) { c.CAData = []byte("other") }),
		"a CA file":           with(base, func(c *rest.Config) { c.CAFile = "/ca" }),
		"insecure":            with(base, func(c *rest.Config) { c.Insecure = true }),
		"another server name": with(base, func(c *rest.Config) { c.ServerName = "api" }),
		"a client cert":       with(base, func(c *rest.Config) { c.CertData, c.KeyData = []byte("c"), []byte("k") }),
		"another client key":  with(base, func(c *rest.Config) { c.KeyData = []byte("k2") }),
		"basic auth":          with(base, func(c *rest.Config) { c.Username, c.Password = "u", "p" }),
		"a token file":        with(base, func(c *rest.Config) { c.BearerTokenFile = "/t" }),
		"impersonation":       with(base, func(c *rest.Config) { c.Impersonate.UserName = "bob" }),
		"impersonated groups": with(base, func(c *rest.Config) { c.Impersonate.Groups = []string{"g"} }),
		"impersonated extra":  with(base, func(c *rest.Config) { c.Impersonate.Extra = map[string][]string{"k": {"v"}} }),
		"another API path":    with(base, func(c *rest.Config) { c.APIPath = "/apis" }),
		"a proxy":             with(base, func(c *rest.Config) { c.Proxy = http.ProxyURL(proxy) }),
		"an exec plugin": with(base, func(c *rest.Config) {
			c.ExecProvider = &clientcmdapi.ExecConfig{Command: "never-run"}
		}),
		"an auth provider": with(base, func(c *rest.Config) {
			c.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}),
	}
	seen := map[string]string{want: "base"}
	for name, cfg := range differ {
		got := Fingerprint(cfg)
		if other, dup := seen[got]; dup {
			t.Errorf("%s: same fingerprint as %s", name, other)
		}
		seen[got] = name
	}
	if Fingerprint(nil) != "" {
		t.Error("Fingerprint(nil) is not empty")
	}
}

func TestFingerprintOfAnExecPluginsClusterConfig(t *testing.T) {
	exec := func(raw string) *rest.Config {
		cfg := &rest.Config{Host: "https://h", ExecProvider: &clientcmdapi.ExecConfig{Command: "never-run"}}
		if raw != "" {
			cfg.ExecProvider.Config = &runtime.Unknown{Raw: []byte(raw)}
		}
		return cfg
	}
	a, b, none := Fingerprint(exec(`{"audience":"a"}`)), Fingerprint(exec(`{"audience":"b"}`)), Fingerprint(exec(""))
	if a == b || a == none || a != Fingerprint(exec(`{"audience":"a"}`)) {
		t.Error("an exec plugin's cluster config does not count, or not stably")
	}
	yamlA, yamlB := exec("audience: a"), exec("audience: b") // not JSON
	yamlA.ExecProvider.Config.(*runtime.Unknown).ContentType = "application/yaml"
	yamlB.ExecProvider.Config.(*runtime.Unknown).ContentType = "application/yaml"
	if Fingerprint(yamlA) == Fingerprint(yamlB) {
		t.Error("non-JSON cluster configs share a fingerprint")
	}
}

// with returns a copy of cfg changed by f.
func with(cfg *rest.Config, f func(*rest.Config)) *rest.Config {
	c := rest.CopyConfig(cfg)
	f(c)
	return c
}

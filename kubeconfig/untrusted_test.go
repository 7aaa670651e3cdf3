package kubeconfig

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
)

func TestUntrustedRefusesEachField(t *testing.T) {
	file := tempFile(t, "file content")
	tests := []struct {
		name, user, cluster, field string
	}{
		// exec and auth-provider are built into the config, never run.
		{"exec runs a command", "exec: {apiVersion: client.authentication.k8s.io/v1, command: kubeworker-test-never-run, interactiveMode: Never}", "", `users["ci"].user.exec`},
		{"auth-provider runs a plugin", "auth-provider: {name: oidc}", "", `users["ci"].user.auth-provider`},
		{"tokenFile reads a file", "tokenFile: " + file, "", `users["ci"].user.tokenFile`},
		{"client-certificate reads a file", "client-certificate: " + file + ", client-key-data: " + b64("key"), "", `users["ci"].user.client-certificate`},
		{"client-key reads a file", "client-certificate-data: " + b64("cert") + ", client-key: " + file, "", `users["ci"].user.client-key`},
		{"certificate-authority reads a file", "", "certificate-authority: " + file, `clusters["c"].cluster.certificate-authority`},
		{"proxy-url sends traffic through a proxy", "", "proxy-url: http://proxy.example:3128", `clusters["c"].cluster.proxy-url`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := testKubeconfig(tt.user, tt.cluster)
			_, err := Load(Options{Kubeconfig: data, Untrusted: true})
			var ue *UntrustedError
			if !errors.Is(err, ErrUntrusted) || !errors.As(err, &ue) || ue.Field != tt.field {
				t.Fatalf("untrusted: got %v, want an UntrustedError for %s", err, tt.field)
			}
			if got := fields(err); !slices.Equal(got, []string{tt.field}) {
				t.Errorf("fields %q, want only %s", got, tt.field)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), file) {
				t.Errorf("the error shows a value: %v", err)
			}
			if _, err := Load(Options{Kubeconfig: data}); err != nil {
				t.Errorf("trusted: %v", err)
			}
		})
	}
}

func TestUntrustedChecksEveryEntry(t *testing.T) {
	data := []byte(`apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
- name: unused
  cluster: {server: "https://10.0.0.1", proxy-url: "socks5://proxy:1080"}
users:
- name: ci
  user: {token: ` + secret + `, tokenFile: /var/run/secrets/token, exec: {command: sh}}
- name: z
  user: {auth-provider: {name: gcp}}
contexts:
- name: dev
  context: {cluster: c, user: ci}
`)
	_, err := Load(Options{Kubeconfig: data, Untrusted: true})
	want := []string{
		`clusters["unused"].cluster.proxy-url`,
		`users["ci"].user.exec`,
		`users["ci"].user.tokenFile`,
		`users["z"].user.auth-provider`,
	}
	if got := fields(err); !slices.Equal(got, want) {
		t.Fatalf("fields %q, want %q (sorted, unused entries too)", got, want)
	}
	lines := strings.Split(err.Error(), "\n")
	for i, f := range want {
		if i >= len(lines) || !strings.HasPrefix(lines[i], "kubeconfig: "+f+": ") {
			t.Errorf("message line %d is not about %s:\n%v", i, f, err)
		}
	}
	if !errors.Is(err, ErrUntrusted) || strings.Contains(err.Error(), secret) {
		t.Errorf("got %v", err)
	}
}

func TestUntrustedSeesDecodedFields(t *testing.T) {
	// The same exec, spelled as JSON and as a map, is found alike.
	asJSON := []byte(`{"clusters":[{"name":"c","cluster":{"server":"https://h"}}],
		"users":[{"name":"ci","user":{"exec":{"command":"sh"}}}],
		"contexts":[{"name":"dev","context":{"cluster":"c","user":"ci"}}],"current-context":"dev"}`)
	var asMap map[string]any
	if err := yaml.Unmarshal(asJSON, &asMap); err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string]Options{
		"json": {Kubeconfig: asJSON, Untrusted: true},
		"map":  {KubeconfigMap: asMap, Untrusted: true},
	} {
		if _, err := Load(opts); !slices.Equal(fields(err), []string{`users["ci"].user.exec`}) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestUntrustedWithoutAKubeconfigIsAnError(t *testing.T) {
	// Neither $KUBECONFIG nor in-cluster config is a fallback.
	t.Setenv("KUBECONFIG", tempFile(t, string(testKubeconfig("", ""))))
	_, err := Load(Options{Untrusted: true})
	if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), "no Kubeconfig or KubeconfigMap") {
		t.Errorf("got %v", err)
	}
}

func TestUntrustedAcceptsASafeKubeconfig(t *testing.T) {
	data := testKubeconfig("client-certificate-data: "+b64("cert")+", client-key-data: "+b64("key")+", as: bob, as-groups: [g]",
		"certificate-authority-data: "+b64("ca")+", tls-server-name: api, disable-compression: true")
	cfg, err := Load(Options{Kubeconfig: data, Untrusted: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BearerToken != secret || string(cfg.CAData) != "ca" || cfg.Impersonate.UserName != "bob" {
		t.Errorf("config %v", cfg)
	}
}

// TestUntrustedCoversEveryField fails when client-go adds a kubeconfig
// field: decide whether Untrusted refuses it (untrusted.go).
func TestUntrustedCoversEveryField(t *testing.T) {
	refused := map[string]bool{}
	for _, r := range userRefusals {
		refused["user."+r.key] = true
	}
	for _, r := range clusterRefusals {
		refused["cluster."+r.key] = true
	}
	allowed := map[string][]string{
		"config":      {"kind", "apiVersion", "preferences", "clusters", "users", "contexts", "current-context", "extensions"},
		"preferences": {"colors", "extensions"},
		"cluster":     {"server", "tls-server-name", "insecure-skip-tls-verify", "certificate-authority-data", "disable-compression", "extensions"},
		"user": {"client-certificate-data", "client-key-data", "token", "as", "as-uid", "as-groups", "as-user-extra",
			"username", "password", "extensions"},
		"context": {"cluster", "user", "namespace", "extensions"},
	}
	for kind, v := range map[string]any{
		"config": clientcmdv1.Config{}, "preferences": clientcmdv1.Preferences{},
		"cluster": clientcmdv1.Cluster{}, "user": clientcmdv1.AuthInfo{}, "context": clientcmdv1.Context{},
	} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "-" || refused[kind+"."+name] || slices.Contains(allowed[kind], name) {
				continue
			}
			t.Errorf("%s field %q (%s) is neither refused nor allowed", kind, name, typ.Field(i).Name)
		}
	}
}

package kubeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/manifest"
)

const twoContexts = `apiVersion: v1
kind: Config
current-context: a
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}
- name: b
  cluster: {server: "https://127.0.0.1:7443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: t}
contexts:
- name: a
  context: {cluster: a, user: u}
- name: b
  context: {cluster: b, user: u}
`

func TestLoad(t *testing.T) {
	var asMap map[string]any
	if err := yaml.Unmarshal([]byte(twoContexts), &asMap); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		opts      Options
		wantHost  string
		wantErr   string
		wantQPS   float32
		wantBurst int
	}{
		{"kubeconfig bytes use the current context", Options{Kubeconfig: []byte(twoContexts)}, "https://127.0.0.1:6443", "", DefaultQPS, DefaultBurst},
		{"a context name picks another", Options{Kubeconfig: []byte(twoContexts), Context: "b"}, "https://127.0.0.1:7443", "", DefaultQPS, DefaultBurst},
		{"a kubeconfig map works the same", Options{KubeconfigMap: asMap, Context: "b"}, "https://127.0.0.1:7443", "", DefaultQPS, DefaultBurst},
		{"QPS and burst are settable", Options{Kubeconfig: []byte(twoContexts), QPS: 7, Burst: 9}, "https://127.0.0.1:6443", "", 7, 9},
		{"an unknown context is an error, not a fallback", Options{Kubeconfig: []byte(twoContexts), Context: "c"}, "", "context was not found", 0, 0},
		{"a malformed kubeconfig is an error", Options{Kubeconfig: []byte("clusters: [")}, "", "kubeconfig", 0, 0},
		{"both forms at once are an error", Options{Kubeconfig: []byte(twoContexts), KubeconfigMap: asMap}, "", "not both", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Host != tt.wantHost || cfg.QPS != tt.wantQPS || cfg.Burst != tt.wantBurst || cfg.UserAgent != "kubeworker" {
				t.Errorf("host %q qps %v burst %d agent %q", cfg.Host, cfg.QPS, cfg.Burst, cfg.UserAgent)
			}
		})
	}
}

func TestLoadFallsBackToTheDefaultLoadingRules(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(twoContexts), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", path)
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a pod
	cfg, err := Load(Options{Context: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:7443" {
		t.Errorf("host %q, want context b's from $KUBECONFIG", cfg.Host)
	}
}

func TestFor(t *testing.T) {
	if got := For(nil); got.KubeconfigMap != nil || got.Context != "" {
		t.Errorf("For(nil) = %+v, want the zero options", got)
	}
	cc := &manifest.ClusterConfig{Config: map[string]any{"apiVersion": "v1"}, Context: "b"}
	if got := For(cc); got.Context != "b" || got.KubeconfigMap["apiVersion"] != "v1" {
		t.Errorf("For(%+v) = %+v", cc, got)
	}
}

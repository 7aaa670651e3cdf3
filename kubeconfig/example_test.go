package kubeconfig_test

import (
	"errors"
	"fmt"

	"github.com/kubeworker/kubeworker/kubeconfig"
)

// A client config from kubeconfig bytes and a context name, with
// kubeworker's rate defaults.
func ExampleLoad() {
	data := []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: dev, context: {cluster: c, user: u}}]
`)
	cfg, err := kubeconfig.Load(kubeconfig.Options{Kubeconfig: data, Context: "dev"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Host, cfg.QPS, cfg.Burst)
	// Output: https://127.0.0.1:6443 100 200
}

// A kubeconfig from a run's values, as a template's cluster_config.config
// holds it: with Untrusted, its exec plugin is refused before anything is
// built, and nothing runs.
func ExampleLoad_untrusted() {
	config := map[string]any{
		"clusters": []any{map[string]any{"name": "c", "cluster": map[string]any{"server": "https://127.0.0.1:6443"}}},
		"users": []any{map[string]any{"name": "ci", "user": map[string]any{
			"exec": map[string]any{"apiVersion": "client.authentication.k8s.io/v1", "command": "curl-my-secrets"},
		}}},
		"contexts":        []any{map[string]any{"name": "dev", "context": map[string]any{"cluster": "c", "user": "ci"}}},
		"current-context": "dev",
	}
	_, err := kubeconfig.Load(kubeconfig.Options{KubeconfigMap: config, Untrusted: true})
	var refused *kubeconfig.UntrustedError
	if errors.Is(err, kubeconfig.ErrUntrusted) && errors.As(err, &refused) {
		fmt.Println(refused.Field)
	}
	fmt.Println(err)
	// Output:
	// users["ci"].user.exec
	// kubeconfig: users["ci"].user.exec: a kubeconfig from a run's values may not run a command; give this cluster in the worker's options instead
}

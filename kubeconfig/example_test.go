package kubeconfig_test

import (
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

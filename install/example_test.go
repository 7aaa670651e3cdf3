package install_test

import (
	"fmt"
	"strings"

	"github.com/kubeworker/kubeworker/install"
	"github.com/kubeworker/kubeworker/worker"
)

// The install manifest for a worker process; worker.Rules is its Role. Without
// Options.ClusterUID, a ClusterRole lets the worker read the
// kube-system namespace's UID, which names the cluster in PIDs.
func ExampleDeploymentManifest() {
	yaml, err := install.DeploymentManifest(install.Options{Name: "etl", Namespace: "workers", JobNamespace: "runs", Image: "example.com/etl-worker:1.4"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, line := range strings.Split(string(yaml), "\n") {
		if strings.HasPrefix(line, "kind: ") {
			fmt.Println(line)
		}
	}
	for _, r := range worker.Rules(false) {
		fmt.Println(r.Resources, r.Verbs)
	}
	// Output:
	// kind: ServiceAccount
	// kind: Role
	// kind: RoleBinding
	// kind: ClusterRole
	// kind: ClusterRoleBinding
	// kind: Deployment
	// [jobs] [create get list watch delete patch]
	// [pods] [list watch]
	// [pods/log] [get]
	// [events] [list]
}

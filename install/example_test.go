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
	// [pods] [list watch delete]
	// [pods/log] [get]
	// [events] [list create]
}

// Three replicas of one fleet (worker.Options.Fleet): the Role also
// grants worker.FleetRules, each pod is its replica's identity, and a
// PodDisruptionBudget ends the manifest.
func ExampleDeploymentManifest_fleet() {
	yaml, err := install.DeploymentManifest(install.Options{Name: "etl", Namespace: "runs", Image: "example.com/etl-worker:1.4", Replicas: 3, ClusterUID: "3f6c…"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, line := range strings.Split(string(yaml), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(line, "kind: ") || strings.HasPrefix(trimmed, "replicas: ") || trimmed == "type: RollingUpdate" || trimmed == "- name: POD_NAME" {
			fmt.Println(trimmed)
		}
	}
	for _, r := range worker.FleetRules() {
		fmt.Println(r.APIGroups, r.Resources, r.Verbs)
	}
	// Output:
	// kind: ServiceAccount
	// kind: Role
	// kind: RoleBinding
	// kind: Deployment
	// replicas: 3
	// type: RollingUpdate
	// - name: POD_NAME
	// kind: PodDisruptionBudget
	// [coordination.k8s.io] [leases] [get create update delete list watch]
	// [batch] [jobs] [update]
}

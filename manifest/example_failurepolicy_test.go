package manifest_test

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/manifest"
)

// A Job whose disruptions are retried without counting against its
// backoffLimit, and whose exit code 42 fails it at once.
func ExampleFailurePolicy() {
	cfg, err := manifest.Default().Render(nil, manifest.RenderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	job, err := cfg.Prepare(manifest.Run{ID: "run-1"}, manifest.PrepareOptions{
		FailurePolicy: &manifest.FailurePolicy{FailJobOnExitCodes: []int32{42}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := yaml.Marshal(job.Spec.PodFailurePolicy)
	fmt.Print(string(out))
	// Output:
	// rules:
	// - action: Ignore
	//   onPodConditions:
	//   - status: "True"
	//     type: DisruptionTarget
	// - action: FailJob
	//   onExitCodes:
	//     containerName: run
	//     operator: In
	//     values:
	//     - 42
}

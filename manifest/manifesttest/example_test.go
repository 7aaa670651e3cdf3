package manifesttest_test

import (
	"fmt"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/manifest/manifesttest"
)

// A template's Job as a golden test would see it: no version label, so
// the file does not change on a kubeworker upgrade. In a test, pass the
// output to manifesttest.Golden(t, "testdata/job.yaml", out).
func ExampleJobYAML() {
	cfg, err := manifest.Default().Render(map[string]any{"image": "example.com/etl:1", "command": "etl --all"}, manifest.RenderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	job, err := cfg.Prepare(manifest.Run{ID: "r-1", Name: "nightly"}, manifest.PrepareOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := manifesttest.JobYAML(job)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(string(out))
	// Output:
	// apiVersion: batch/v1
	// kind: Job
	// metadata:
	//   generateName: nightly-
	//   labels:
	//     app.kubernetes.io/managed-by: kubeworker
	//     kubeworker.io/run-id: r-1
	//     kubeworker.io/run-name: nightly
	//   namespace: default
	// spec:
	//   backoffLimit: 0
	//   completions: 1
	//   parallelism: 1
	//   template:
	//     metadata:
	//       labels:
	//         app.kubernetes.io/managed-by: kubeworker
	//         kubeworker.io/run-id: r-1
	//         kubeworker.io/run-name: nightly
	//     spec:
	//       containers:
	//       - args:
	//         - etl
	//         - --all
	//         image: example.com/etl:1
	//         imagePullPolicy: IfNotPresent
	//         name: run
	//         resources: {}
	//       restartPolicy: Never
}

package manifest_test

import (
	"fmt"

	"github.com/kubeworker/kubeworker/manifest"
)

// Render the default template for one run and look at the Job it gives.
func ExampleTemplate_Render() {
	cfg, err := manifest.Default().Render(map[string]any{
		"image":        "registry.example.com/etl:1.4",
		"command":      `python -m etl --date "2025-02-13"`,
		"env.TZ":       "UTC",
		"labels.team":  "Data Platform",
		"memory_limit": "1Gi",
	}, manifest.RenderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	job, err := cfg.Prepare(manifest.Run{ID: "run-7", Name: "Nightly ETL"}, manifest.PrepareOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := job.Spec.Template.Spec.Containers[0]
	fmt.Println(job.Namespace, job.GenerateName)
	fmt.Println(c.Image, c.Args)
	fmt.Println(c.Env[0].Name, c.Env[0].Value, c.Resources.Limits.Memory())
	fmt.Println(job.Labels["team"], job.Labels[manifest.LabelRunID])
	// Output:
	// default nightly-etl-
	// registry.example.com/etl:1.4 [python -m etl --date 2025-02-13]
	// TZ UTC 1Gi
	// Data-Platform run-7
}

// Every problem with the values comes back at once, each with its path.
func ExampleTemplate_Values() {
	_, err := manifest.Default().Values(map[string]any{
		"backoff_limit":     -1,
		"image_pull_policy": "Sometimes",
	}, manifest.ValuesOptions{})
	fmt.Println(err)
	// Output:
	// manifest: values: 2 problems
	// 	values.backoff_limit: Invalid value: -1: must be at least 0
	// 	values.image_pull_policy: Unsupported value: "Sometimes": supported values: "IfNotPresent", "Always", "Never"
}

// A mistyped field is caught before anything reaches a cluster.
func ExampleLoad() {
	tmpl, err := manifest.Load([]byte(`
job_configuration:
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: main
              image: "{{ image }}"
              imagePullPolicyy: Always
variables:
  properties:
    image: {type: string, default: busybox}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := tmpl.Render(nil, manifest.RenderOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = cfg.Prepare(manifest.Run{ID: "r1"}, manifest.PrepareOptions{})
	fmt.Println(err)
	// Output:
	// manifest: prepare: job_configuration.job_manifest.spec.template.spec.containers[0].imagePullPolicyy: Invalid value: unknown field: a Job has no such field
}

// A complete Job file, as Prefect 1's job environment used: the first
// container is the run's.
func ExampleLoadJob() {
	tmpl, err := manifest.LoadJob([]byte(`
apiVersion: batch/v1
kind: Job
metadata: {name: my-job}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - {name: flow, image: "", env: [{name: MY_ENV, value: foo}]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, _ := tmpl.Render(nil, manifest.RenderOptions{})
	job, err := cfg.Prepare(manifest.Run{ID: "r1", Env: map[string]string{"RUN_ID": "r1"}},
		manifest.PrepareOptions{Image: "example.com/flow:1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	c := job.Spec.Template.Spec.Containers[0]
	fmt.Println(job.Name, c.Image, c.Env)
	// Output:
	// my-job example.com/flow:1 [{MY_ENV foo nil} {RUN_ID r1 nil}]
}

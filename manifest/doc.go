// Package manifest turns a job template and a run into the Kubernetes Job to
// create. It is pure: no client, no network, no clock.
//
// # Templates
//
// A [Template] is a job configuration (the Job manifest and base fields such
// as namespace, env and labels) plus a JSON-Schema of variables, as in
// Prefect's base job template. [Load] reads one from YAML or JSON, [Default]
// returns the built-in one and [LoadJob] makes one of a complete Job file.
//
// # Rendering
//
// [Template.Render] fills "{{ name }}" placeholders from values, checked
// against the schema, in one pass:
//
//	cfg, err := manifest.Default().Render(map[string]any{
//		"image":   "registry.example.com/etl:1.4",
//		"env.TZ":  "UTC",
//	}, manifest.RenderOptions{})
//
// A string that is exactly one placeholder becomes the value, typed; a
// missing value removes its map key or list item. Inside longer text a value
// reads as text (nil as "", maps and lists as JSON). Map keys are never
// templated and inserted text is never scanned again. "{{ $NAME }}" reads
// RenderOptions.LookupEnv only.
//
// # Preparing a run
//
// [Config.Prepare] merges env, labels and annotations, fills the image,
// args and generateName, and decodes the result strictly into a
// *batchv1.Job, so an unknown or mistyped field fails here, with its path,
// not at the API server:
//
//	job, err := cfg.Prepare(manifest.Run{ID: runID, Name: "nightly"}, manifest.PrepareOptions{})
//
// # Errors
//
// Every failure is an [*Error] listing each problem as a
// [k8s.io/apimachinery/pkg/util/validation/field.Error] with its path, such as
// values.backoff_limit or
// job_configuration.job_manifest.spec.template.spec.containers[0].image.
package manifest

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
// declared variable with no value removes its map key or list item. Inside
// longer text a value reads as text (nil as "", maps and lists as JSON).
// Map keys are never templated and inserted text is never scanned again.
// "{{ $NAME }}" reads RenderOptions.LookupEnv only. Nothing is dropped in
// silence: a placeholder that names no variable is an error at Load (or at
// Render for a LoadJob template), and so is a "$NAME" with no such
// environment variable, unless the caller opts out with
// RenderOptions.AllowUnknownPlaceholders and AllowMissingEnv (and
// LoadOptions.AllowUnknownPlaceholders).
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
// # Env
//
// A run's env comes from the worker (PrepareOptions.Env), the template
// (job_configuration.env and the run container's env), the values and the
// run (Run.Env), later ones winning. Env is an object of names to values
// or a Kubernetes list of {name, value} and {name, valueFrom}. A null
// value removes the variable, whoever else sets it, except the run itself.
// When job_configuration.env is written out rather than "{{ env }}", the
// env variable's value merges into it. The container's list is ordered so
// that a value referring to $(OTHER) comes after OTHER, as the kubelet
// expands a reference only to a variable defined earlier.
//
// # Differences from Prefect
//
// Templates written for Prefect's Kubernetes worker load and render as
// they are, with these deliberate differences:
//
//   - A placeholder that names no variable, and a "{{ $NAME }}" with no
//     such environment variable, are errors, not silently removed or
//     empty: a typo must not ship a Job without its setting. The opt-outs
//     above give Prefect's behaviour.
//   - Values are checked against the variables' schema, every problem at
//     once; an unknown value is an error (ValuesOptions.AllowUnknown keeps
//     it). Prefect's server checks on deployment, the worker not at all.
//   - An object value merges with its default key by key, and "env.NAME"
//     sets one key: setting one variable does not drop a pool's defaults.
//     Prefect replaces the whole object.
//   - nil inside text is "", not "None".
//   - Each env name appears once. Ours go before the template's list (after
//     it for a LoadJob template); a plain entry of the template's list
//     with a name we set is dropped, a valueFrom entry wins over ours.
//     Prefect prepends and keeps duplicates, which the API server warns
//     about and the kubelet resolves to the last.
//   - Env entries are ordered for $(VAR) references (Prefect: dict order).
//   - The run container is found by name (PrepareOptions.Container);
//     Prefect always takes the first container.
//   - Label keys and values are slugified as python-slugify does
//     (transliterated to ASCII, runs of "-" collapsed), then cut to
//     Kubernetes' limits; a label or run name with no slug at all is an
//     error, never an empty value. Unlike Prefect, their case is kept (a
//     valid label a user wrote, and the selectors on it, stay as they
//     are), and so is "--" in a key's DNS prefix (IDN prefixes such as
//     "xn--"). The run ID label is never slugified: Jobs are found by it.
//     Labels are copied to the pod template. generateName is always a
//     valid slug, never the name sent as it is.
//   - The annotations variable and the worker's annotations go on the pod
//     template too (monitoring annotations such as prometheus.io/scrape
//     work only on pods); the template's own Job annotations stay on the
//     Job.
//   - The Job's namespace is the manifest's (metadata.namespace, filled
//     from job_configuration.namespace when empty); Prefect can create a
//     Job in another namespace than its manifest says.
//   - The Job is decoded strictly before anything reaches a cluster: an
//     unknown or mistyped field is an error naming its path.
//   - YAML is read as Kubernetes reads it (YAML 1.1): quote y, n, on, off.
//
// # Errors
//
// Every failure is an [*Error] listing each problem as a
// [k8s.io/apimachinery/pkg/util/validation/field.Error] with its path, such as
// values.backoff_limit or
// job_configuration.job_manifest.spec.template.spec.containers[0].image.
package manifest

package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// renderDefault renders and prepares the default template.
func renderDefault(t *testing.T, values map[string]any, opts PrepareOptions) *Config {
	t.Helper()
	cfg, err := Default().Render(values, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNullEnvValueUnsets(t *testing.T) {
	worker := PrepareOptions{Env: map[string]string{"DEBUG": "1", "KEEP": "w"}}
	tests := []struct {
		name   string
		values map[string]any
		run    map[string]string
		want   []corev1.EnvVar
	}{
		{"a null value removes the worker's", map[string]any{"env": map[string]any{"DEBUG": nil}}, nil,
			[]corev1.EnvVar{{Name: "KEEP", Value: "w"}}},
		{"env.NAME null does too", map[string]any{"env.DEBUG": nil}, nil,
			[]corev1.EnvVar{{Name: "KEEP", Value: "w"}}},
		{"the run's own env still wins", map[string]any{"env": map[string]any{"DEBUG": nil}}, map[string]string{"DEBUG": "run"},
			[]corev1.EnvVar{{Name: "DEBUG", Value: "run"}, {Name: "KEEP", Value: "w"}}},
		{"a value overrides the worker's", map[string]any{"env": map[string]any{"DEBUG": "0"}}, nil,
			[]corev1.EnvVar{{Name: "DEBUG", Value: "0"}, {Name: "KEEP", Value: "w"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := prepare(t, renderDefault(t, tt.values, worker), Run{Env: tt.run}, worker)
			if diff := cmp.Diff(tt.want, envOf(job, 0)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNullEnvValueUnsetsTheTemplates(t *testing.T) {
	src := []byte(`
job_configuration:
  env: {DEBUG: "1", TZ: UTC}
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: main
              env:
                - {name: LEVEL, value: info}
                - {name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: k}}}
variables:
  properties:
    env: {type: object, default: {}}
`)
	tmpl, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tmpl.Render(map[string]any{"env": map[string]any{"DEBUG": nil, "LEVEL": nil, "TOKEN": nil}}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job := prepare(t, cfg, Run{}, PrepareOptions{})
	if diff := cmp.Diff([]corev1.EnvVar{{Name: "TZ", Value: "UTC"}}, envOf(job, 0)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestLiteralEnvMerges: as Prefect since its fix of issue #19256, a pool's
// fixed env and the caller's env values both reach the Job.
func TestLiteralEnvMerges(t *testing.T) {
	for _, literal := range []string{`{TZ: UTC, LOG_LEVEL: info}`, `[{name: TZ, value: UTC}, {name: LOG_LEVEL, value: info}]`} {
		t.Run(literal, func(t *testing.T) {
			tmpl, err := Load([]byte(`
job_configuration:
  env: ` + literal + `
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    spec: {template: {spec: {restartPolicy: Never, containers: [{name: main}]}}}
variables:
  properties:
    env: {type: object, default: {REGION: eu}}
`))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := tmpl.Render(map[string]any{"env.LOG_LEVEL": "debug"}, RenderOptions{})
			if err != nil {
				t.Fatal(err)
			}
			want := []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}, {Name: "REGION", Value: "eu"}, {Name: "TZ", Value: "UTC"}}
			if diff := cmp.Diff(want, envOf(prepare(t, cfg, Run{}, PrepareOptions{}), 0)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestEnvAsAKubernetesList: a Prefect deployment's env list, valueFrom
// included, is accepted in values and in the job configuration.
func TestEnvAsAKubernetesList(t *testing.T) {
	ref := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}
	cfg := renderDefault(t, map[string]any{"env": []any{
		map[string]any{"name": "USER", "value": "etl"},
		map[string]any{"name": "PASSWORD", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "db", "key": "password"}}},
	}}, PrepareOptions{})
	if cfg.Env["USER"] != "etl" || cfg.EnvValueFrom["PASSWORD"] == nil {
		t.Fatalf("config env %v, from %v", cfg.Env, cfg.EnvValueFrom)
	}
	job := prepare(t, cfg, Run{}, PrepareOptions{Env: map[string]string{"PASSWORD": "worker-plain"}})
	// The container's "{{ env }}" is a list now: ours first, then its
	// valueFrom entries, which win over the worker's plain PASSWORD.
	want := []corev1.EnvVar{{Name: "USER", Value: "etl"}, {Name: "PASSWORD", ValueFrom: ref}}
	if diff := cmp.Diff(want, envOf(job, 0)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	for _, bad := range []struct {
		env  any
		path string
	}{
		{[]any{map[string]any{"value": "x"}}, "job_configuration.env[0].name"},
		{[]any{"NAME=x"}, "job_configuration.env[0]"},
		{[]any{map[string]any{"name": "A", "valu": "x"}}, "job_configuration.env[0]"},
	} {
		_, err := Default().Render(map[string]any{"env": bad.env}, RenderOptions{})
		if err == nil || !containsPath(err, bad.path) {
			t.Errorf("env %v: got %v, want an error at %s", bad.env, err, bad.path)
		}
	}
}

func containsPath(err error, path string) bool {
	me, ok := err.(*Error)
	if !ok {
		return false
	}
	for _, fe := range me.Errs {
		if fe.Field == path {
			return true
		}
	}
	return false
}

// TestEnvOrderKeepsReferencesWorking: the kubelet expands $(A) only when A
// comes earlier in the list.
func TestEnvOrderKeepsReferencesWorking(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]any
		want []string
	}{
		{"no references: by name", map[string]any{"B": "1", "A": "2"}, []string{"A", "B"}},
		{"a reference moves its target first", map[string]any{"A_URL": "http://$(HOST):$(PORT)", "HOST": "h", "PORT": "1", "Z": "z"},
			[]string{"HOST", "PORT", "A_URL", "Z"}},
		{"a chain", map[string]any{"A": "$(B)", "B": "$(C)", "C": "c"}, []string{"C", "B", "A"}},
		{"an escaped $$(X) is no reference", map[string]any{"A": "$$(B)", "B": "b"}, []string{"A", "B"}},
		{"a reference to an undefined name changes nothing", map[string]any{"A": "$(NOPE)", "B": "b"}, []string{"A", "B"}},
		{"a cycle is broken where it is entered", map[string]any{"A": "$(B)", "B": "$(A)", "C": "$(A)"}, []string{"B", "A", "C"}},
		{"an entry after a cycle comes after it", map[string]any{" ": "$(A)", "A": "$(B)", "B": "$(A)"}, []string{"B", "A", " "}},
		{"a self reference changes nothing", map[string]any{"A": "$(A)", "B": "b"}, []string{"A", "B"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := prepare(t, renderDefault(t, map[string]any{"env": tt.env}, PrepareOptions{}), Run{}, PrepareOptions{})
			var got []string
			for _, e := range envOf(job, 0) {
				got = append(got, e.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestEmptyCommandIsNotSet: "" and null give the worker's default
// command, as Prefect reads them.
func TestEmptyCommandIsNotSet(t *testing.T) {
	opts := PrepareOptions{Command: []string{"python", "-m", "flow"}}
	for _, cmd := range []any{"", "   ", nil} {
		cfg := renderDefault(t, map[string]any{"command": cmd}, opts)
		if cfg.Command != nil {
			t.Errorf("command %q: Config.Command %q, want nil", cmd, cfg.Command)
		}
		job := prepare(t, cfg, Run{}, opts)
		if diff := cmp.Diff(opts.Command, job.Spec.Template.Spec.Containers[0].Args); diff != "" {
			t.Errorf("command %q: args (-want +got):\n%s", cmd, diff)
		}
	}
}

// TestAnnotationsGoOnThePodTemplate: the annotations variable and the
// worker's go on the pod too; a template's own Job annotations stay on the
// Job, and the pod template's own are kept.
func TestAnnotationsGoOnThePodTemplate(t *testing.T) {
	cfg := configOf(t, `
apiVersion: batch/v1
kind: Job
metadata: {annotations: {job-only: "1"}}
spec:
  template:
    metadata: {annotations: {pod-own: "2", prometheus.io/port: "1"}}
    spec: {restartPolicy: Never, containers: [{name: main, image: i}]}
`, nil)
	cfg.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"}
	job := prepare(t, cfg, Run{}, PrepareOptions{Annotations: map[string]string{"team": "data"}})
	wantPod := map[string]string{"pod-own": "2", "prometheus.io/port": "9090", "prometheus.io/scrape": "true", "team": "data"}
	if diff := cmp.Diff(wantPod, job.Spec.Template.Annotations); diff != "" {
		t.Errorf("pod annotations (-want +got):\n%s", diff)
	}
	wantJob := map[string]string{"job-only": "1", "prometheus.io/port": "9090", "prometheus.io/scrape": "true", "team": "data"}
	if diff := cmp.Diff(wantJob, job.Annotations); diff != "" {
		t.Errorf("Job annotations (-want +got):\n%s", diff)
	}
}

// TestConfigValidate: a template's Job checked without a run, every
// problem at once, and the Config left as it was.
func TestConfigValidate(t *testing.T) {
	if err := renderDefault(t, nil, PrepareOptions{}).Validate(PrepareOptions{}); err != nil {
		t.Errorf("the default template: %v", err)
	}
	tmpl, err := Load([]byte(`
job_configuration:
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    spec:
      backoffLimit: "three"
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: main, imagePullPolicyy: Always}]
variables: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := tmpl.Render(nil, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := deepCopy(cfg.JobManifest)
	err = cfg.Validate(PrepareOptions{})
	if err == nil || !containsPath(err, "job_configuration.job_manifest.spec.template.spec.restartPolicy") {
		t.Fatalf("got %v, want the restartPolicy named", err)
	}
	if !cmp.Equal(before, cfg.JobManifest) {
		t.Error("Validate changed the Config")
	}
	cfg.JobManifest = deepCopy(before).(map[string]any)
	spec := cfg.JobManifest["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	spec["restartPolicy"] = "Never"
	err = cfg.Validate(PrepareOptions{})
	if err == nil || !containsPath(err, "job_configuration.job_manifest.spec.backoffLimit") ||
		!containsPath(err, "job_configuration.job_manifest.spec.template.spec.containers[0].imagePullPolicyy") {
		t.Errorf("got %v, want both decode problems", err)
	}
}

// TestRunIDLabelIsTheIDAsItIs: Jobs are found by the run ID label, so it
// is never slugified (a valid ID with "--" stays as it is).
func TestRunIDLabelIsTheIDAsItIs(t *testing.T) {
	job := prepare(t, renderDefault(t, nil, PrepareOptions{}), Run{ID: "run--1_A.b"}, PrepareOptions{})
	if got := job.Labels[LabelRunID]; got != "run--1_A.b" {
		t.Errorf("run ID label %q", got)
	}
	if got := job.Spec.Template.Labels[LabelRunID]; got != "run--1_A.b" {
		t.Errorf("pod's run ID label %q", got)
	}
}

// TestEnvNamesAreChecked: a name Kubernetes would refuse is an error with
// its path, before anything reaches a cluster (two invalid UTF-8 names
// would otherwise both be sent as U+FFFD).
func TestEnvNamesAreChecked(t *testing.T) {
	for _, name := range []string{"", "A=B", "\x94", "tab\there"} {
		cfg := renderDefault(t, map[string]any{"env": map[string]any{name: "v"}}, PrepareOptions{})
		_, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{})
		if err == nil || !strings.Contains(err.Error(), "not an env name") {
			t.Errorf("env name %q: got %v, want an error", name, err)
		}
	}
	cfg := renderDefault(t, map[string]any{"env": map[string]any{"my.setting-1": "v"}}, PrepareOptions{})
	if _, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{}); err != nil {
		t.Errorf("a relaxed env name: %v", err)
	}
}

package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// configOf renders a template whose job_manifest is the given YAML Job.
func configOf(t *testing.T, jobYAML string, values map[string]any) *Config {
	t.Helper()
	tmpl, err := LoadJob([]byte(jobYAML))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.JobFile = false
	cfg, err := tmpl.Render(values, RenderOptions{ValuesOptions: ValuesOptions{AllowUnknown: true}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const baseJob = `
apiVersion: batch/v1
kind: Job
metadata: {}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: img
`

func prepare(t *testing.T, cfg *Config, run Run, opts PrepareOptions) *batchv1.Job {
	t.Helper()
	if run.ID == "" {
		run.ID = "r1"
	}
	job, err := cfg.Prepare(run, opts)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

func envOf(job *batchv1.Job, i int) []corev1.EnvVar { return job.Spec.Template.Spec.Containers[i].Env }

func TestPrepareEnv(t *testing.T) {
	secretRef := &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}
	listJob := strings.Replace(baseJob, "image: img", `image: img
          env:
            - {name: SHARED, value: template}
            - {name: KEY, valueFrom: {secretKeyRef: {name: s, key: k}}}
            - {name: ONLY_TEMPLATE, value: t}`, 1)
	tests := []struct {
		name    string
		job     string
		jobFile bool
		cfgEnv  map[string]string
		run     map[string]string
		worker  map[string]string
		want    []corev1.EnvVar
	}{
		{"a map becomes a name-sorted list", baseJob, false, map[string]string{"B": "2", "A": "1"}, nil, nil,
			[]corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}},
		{"run env wins over the config's, which wins over the worker's", baseJob, false,
			map[string]string{"X": "config", "Y": "config"}, map[string]string{"X": "run"}, map[string]string{"X": "worker", "Y": "worker", "Z": "worker"},
			[]corev1.EnvVar{{Name: "X", Value: "run"}, {Name: "Y", Value: "config"}, {Name: "Z", Value: "worker"}}},
		{"ours go first; template entries of the same name are dropped; valueFrom is kept and wins", listJob, false,
			map[string]string{"SHARED": "ours", "KEY": "plain-text-key"}, nil, nil,
			[]corev1.EnvVar{{Name: "SHARED", Value: "ours"}, {Name: "KEY", ValueFrom: secretRef}, {Name: "ONLY_TEMPLATE", Value: "t"}}},
		{"a job file appends ours after the container's own", listJob, true,
			map[string]string{"NEW": "n", "SHARED": "ours"}, nil, nil,
			[]corev1.EnvVar{{Name: "KEY", ValueFrom: secretRef}, {Name: "ONLY_TEMPLATE", Value: "t"}, {Name: "NEW", Value: "n"}, {Name: "SHARED", Value: "ours"}}},
		{"no env anywhere leaves none", baseJob, false, nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOf(t, tt.job, nil)
			cfg.Env, cfg.JobFile = tt.cfgEnv, tt.jobFile
			job := prepare(t, cfg, Run{Env: tt.run}, PrepareOptions{Env: tt.worker})
			if diff := cmp.Diff(tt.want, envOf(job, 0)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepareAPIURLRewrite(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://localhost:4200/api", "http://host.internal:4200/api"},
		{"https://127.0.0.1/api?x=1", "https://host.internal/api?x=1"},
		{"http://api.example.com:4200/api", "http://api.example.com:4200/api"},
		{"http://localhost.example.com/api", "http://localhost.example.com/api"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			cfg := configOf(t, baseJob, nil)
			cfg.Env = map[string]string{"API_URL": tt.in, "OTHER": "http://localhost/"}
			job := prepare(t, cfg, Run{}, PrepareOptions{APIURLEnv: "API_URL", APIHost: "host.internal"})
			want := []corev1.EnvVar{{Name: "API_URL", Value: tt.want}, {Name: "OTHER", Value: "http://localhost/"}}
			if diff := cmp.Diff(want, envOf(job, 0)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	t.Run("a value that is not a URL is an error naming the variable", func(t *testing.T) {
		cfg := configOf(t, baseJob, nil)
		cfg.Env = map[string]string{"API_URL": "localhost:4200"}
		_, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{APIURLEnv: "API_URL", APIHost: "h"})
		if err == nil || !strings.Contains(err.Error(), "env.API_URL") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("APIURLEnv without APIHost is an error", func(t *testing.T) {
		_, err := configOf(t, baseJob, nil).Prepare(Run{ID: "r"}, PrepareOptions{APIURLEnv: "API_URL"})
		if err == nil || !strings.Contains(err.Error(), "go together") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestPrepareLabels(t *testing.T) {
	job := strings.Replace(baseJob, "metadata: {}", "metadata: {labels: {from-template: t, shared: template}}", 1)
	job = strings.Replace(job, "    spec:\n      restartPolicy", "    metadata: {labels: {pod-only: p}}\n    spec:\n      restartPolicy", 1)
	cfg := configOf(t, job, nil)
	cfg.Labels = map[string]string{"shared": "config", "Team Name": "Data Platform!", "Example.COM/x": "1"}
	got := prepare(t, cfg, Run{ID: "run-1", Name: "My Run", Labels: map[string]string{"shared": "run", LabelRunID: "spoofed"}},
		PrepareOptions{Labels: map[string]string{"worker": "w1", "shared": "worker"}})
	want := map[string]string{
		"from-template": "t", "shared": "run", "Team-Name": "Data-Platform", "example.com/x": "1", "worker": "w1",
		LabelRunID: "run-1", LabelRunName: "My-Run", LabelManagedBy: ManagedBy, LabelVersion: "devel",
	}
	if diff := cmp.Diff(want, got.Labels); diff != "" {
		t.Errorf("Job labels (-want +got):\n%s", diff)
	}
	want["pod-only"] = "p"
	if diff := cmp.Diff(want, got.Spec.Template.Labels); diff != "" {
		t.Errorf("pod template labels (-want +got):\n%s", diff)
	}

	cfg.Labels = map[string]string{"!!!": "x"}
	_, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{})
	var fe *field.Error
	if !errors.As(err, &fe) || fe.Field != "job_configuration.job_manifest.metadata.labels[!!!]" {
		t.Fatalf("an impossible label key: got %v, want an error at metadata.labels[!!!]", err)
	}
}

func TestPrepareAnnotations(t *testing.T) {
	job := strings.Replace(baseJob, "metadata: {}", "metadata: {annotations: {a: template, b: template}}", 1)
	cfg := configOf(t, job, nil)
	cfg.Annotations = map[string]string{"b": "config", "My Key": "any value: kept as is!"}
	got := prepare(t, cfg, Run{}, PrepareOptions{Annotations: map[string]string{"c": "worker", "b": "worker"}})
	want := map[string]string{"a": "template", "b": "worker", "My-Key": "any value: kept as is!", "c": "worker"}
	if diff := cmp.Diff(want, got.Annotations); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestPrepareImage(t *testing.T) {
	noImage := strings.Replace(baseJob, "image: img", "image: null", 1)
	emptyImage := strings.Replace(baseJob, "image: img", `image: ""`, 1)
	tests := []struct {
		name, job, option, want string
	}{
		{"an image in the manifest is kept", baseJob, "other", "img"},
		{"no image gets DefaultImage", noImage, "", DefaultImage},
		{"no image gets the configured image", noImage, "mine:1", "mine:1"},
		{"an empty image counts as none", emptyImage, "mine:1", "mine:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := prepare(t, configOf(t, tt.job, nil), Run{}, PrepareOptions{Image: tt.option})
			if got := job.Spec.Template.Spec.Containers[0].Image; got != tt.want {
				t.Errorf("image %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPrepareArgs(t *testing.T) {
	withArgs := func(args string) string {
		return strings.Replace(baseJob, "image: img", "image: img\n          args: "+args, 1)
	}
	tests := []struct {
		name    string
		job     string
		jobFile bool
		cfgCmd  []string
		optCmd  []string
		want    []string
		wantErr string
	}{
		{"absent args take the config's command", baseJob, false, []string{"run", "it"}, []string{"opt"}, []string{"run", "it"}, ""},
		{"absent args take the options' command when the config has none", baseJob, false, nil, []string{"opt"}, []string{"opt"}, ""},
		{"absent args and no command leave none", baseJob, false, nil, nil, nil, ""},
		{"a string is split as a POSIX shell would", withArgs(`'python -m app --name "a b" c\ d'`), false, nil, []string{"x"}, []string{"python", "-m", "app", "--name", "a b", "c d"}, ""},
		{"a string keeps $VARS literally", withArgs(`'echo $HOME'`), false, nil, nil, []string{"echo", "$HOME"}, ""},
		{"a list is kept", withArgs(`[a, "b c"]`), false, nil, []string{"x"}, []string{"a", "b c"}, ""},
		{"an empty list is kept", withArgs(`[]`), false, nil, []string{"x"}, []string{}, ""},
		{"an empty list in a job file counts as absent", withArgs(`[]`), true, nil, []string{"x"}, []string{"x"}, ""},
		{"a number is an error", withArgs(`5`), false, nil, nil, nil, "containers[0].args"},
		{"an unterminated quote is an error", withArgs(`'echo "hi'`), false, nil, nil, nil, "cannot split"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOf(t, tt.job, nil)
			cfg.Command, cfg.JobFile = tt.cfgCmd, tt.jobFile
			job, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{Command: tt.optCmd})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, job.Spec.Template.Spec.Containers[0].Args); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrepareGenerateName(t *testing.T) {
	withMeta := func(meta string) string { return strings.Replace(baseJob, "metadata: {}", "metadata: "+meta, 1) }
	tests := []struct {
		name, job, cfgName, runName string
		wantGenerate, wantName      string
	}{
		{"a rendered name is slugified, not sent as it is", withMeta(`{generateName: "My Flow Run-"}`), "", "", "my-flow-run-", ""},
		{"a lone hyphen falls back to the config's name", withMeta(`{generateName: "-"}`), "Nightly ETL", "run", "nightly-etl-", ""},
		{"no generateName falls back to the run's name", baseJob, "", "Hello, World 1,000", "hello-world-1000-", ""},
		{"a name with no slug falls back to the default prefix", withMeta(`{generateName: "---"}`), "!!!", "", DefaultGenerateName, ""},
		{"a fixed metadata.name is kept and generateName dropped", withMeta(`{name: fixed, generateName: x-}`), "", "", "", "fixed"},
		{"a long name is cut to 45 characters", withMeta(`{generateName: "` + strings.Repeat("abcdefghij", 6) + `-"}`), "", "", strings.Repeat("abcdefghij", 4) + "abcde-", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := configOf(t, tt.job, nil)
			cfg.Name = tt.cfgName
			job := prepare(t, cfg, Run{Name: tt.runName}, PrepareOptions{})
			if job.GenerateName != tt.wantGenerate || job.Name != tt.wantName {
				t.Errorf("generateName %q name %q, want %q %q", job.GenerateName, job.Name, tt.wantGenerate, tt.wantName)
			}
		})
	}
}

// TestPrepareRunNameWithNoSlug: a run name that gives no label value is an
// error naming it, never an empty label.
func TestPrepareRunNameWithNoSlug(t *testing.T) {
	_, err := configOf(t, baseJob, nil).Prepare(Run{ID: "r", Name: "???"}, PrepareOptions{})
	if err == nil || !containsPath(err, labelsPath.Key(LabelRunName).String()) {
		t.Errorf("got %v, want an error at the run-name label", err)
	}
}

func TestPrepareNamespaceComesFromTheManifest(t *testing.T) {
	cfg := configOf(t, strings.Replace(baseJob, "metadata: {}", "metadata: {namespace: team-a}", 1), nil)
	cfg.Namespace = "default"
	if got := prepare(t, cfg, Run{}, PrepareOptions{}).Namespace; got != "team-a" {
		t.Errorf("namespace %q, want the manifest's team-a", got)
	}
	cfg = configOf(t, baseJob, nil)
	cfg.Namespace = "team-b"
	if got := prepare(t, cfg, Run{}, PrepareOptions{}).Namespace; got != "team-b" {
		t.Errorf("namespace %q, want the config's team-b when the manifest names none", got)
	}
}

func TestPrepareFindsTheRunContainerByName(t *testing.T) {
	job := strings.Replace(baseJob, "        - name: main\n", "        - name: sidecar\n          image: proxy\n        - name: main\n", 1)
	cfg := configOf(t, job, nil)
	cfg.Env = map[string]string{"A": "1"}
	got := prepare(t, cfg, Run{}, PrepareOptions{Container: "main"})
	if len(envOf(got, 0)) != 0 || len(envOf(got, 1)) != 1 {
		t.Errorf("env went to the wrong container: sidecar %v, main %v", envOf(got, 0), envOf(got, 1))
	}
	_, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{Container: "absent"})
	if err == nil || !strings.Contains(err.Error(), `"absent"`) || !strings.Contains(err.Error(), "sidecar, main") {
		t.Fatalf("got %v, want an error naming the container and the ones there are", err)
	}
}

func TestPrepareDoesNotChangeTheConfig(t *testing.T) {
	cfg := configOf(t, baseJob, nil)
	cfg.Env = map[string]string{"A": "1"}
	first := prepare(t, cfg, Run{ID: "a", Name: "first", Env: map[string]string{"R": "1"}}, PrepareOptions{})
	second := prepare(t, cfg, Run{ID: "b", Name: "second"}, PrepareOptions{})
	if len(envOf(second, 0)) != 1 || second.Labels[LabelRunID] != "b" || first.Labels[LabelRunID] != "a" {
		t.Errorf("the first run leaked into the second: %v %v", envOf(second, 0), second.Labels)
	}
}

func TestPrepareRunID(t *testing.T) {
	cfg := configOf(t, baseJob, nil)
	for id, want := range map[string]string{"": "run.id: Required", "has space": "run.id: Invalid value", strings.Repeat("a", 64): "run.id: Invalid value"} {
		if _, err := cfg.Prepare(Run{ID: id}, PrepareOptions{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("id %q: got %v, want %q", id, err, want)
		}
	}
}

func TestPrepareCustomizations(t *testing.T) {
	cfg := configOf(t, baseJob, nil)
	patch := `[{"op": "add", "path": "/spec/template/spec/tolerations", "value": [{"key": "gpu", "operator": "Exists"}]},
	           {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "patched"}]`
	job := prepare(t, cfg, Run{}, PrepareOptions{Customizations: []byte(patch)})
	if len(job.Spec.Template.Spec.Tolerations) != 1 || job.Spec.Template.Spec.Containers[0].Image != "patched" {
		t.Errorf("patch not applied: %+v", job.Spec.Template.Spec)
	}
	for patch, want := range map[string]string{
		`{"op": "add"}`:                                        "not an RFC 6902 JSON patch",
		`[{"op": "remove", "path": "/nope/x"}]`:                "does not apply",
		`[{"op": "replace", "path": "/kind", "value": "Pod"}]`: "kind: Invalid value",
	} {
		if _, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{Customizations: []byte(patch)}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("patch %s: got %v, want %q", patch, err, want)
		}
	}
}

func TestPrepareDropsNulls(t *testing.T) {
	cfg := configOf(t, strings.Replace(baseJob, "restartPolicy: Never", "restartPolicy: Never\n      serviceAccountName: null\n      nodeSelector: {disk: null, zone: a}", 1), nil)
	got := prepare(t, cfg, Run{}, PrepareOptions{})
	if got.Spec.Template.Spec.ServiceAccountName != "" || len(got.Spec.Template.Spec.NodeSelector) != 1 {
		t.Errorf("nulls not dropped: %+v", got.Spec.Template.Spec)
	}
}

func TestPrepareFailurePolicy(t *testing.T) {
	sidecarJob := strings.Replace(baseJob, "      containers:\n        - name: main", "      containers:\n        - name: proxy\n          image: p\n        - name: main", 1)
	cfg := configOf(t, sidecarJob, nil)
	job := prepare(t, cfg, Run{}, PrepareOptions{Container: "main", FailurePolicy: &FailurePolicy{FailJobOnExitCodes: []int32{42, 3, 42}}})
	want := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
			{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
		}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: new("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3, 42},
		}},
	}}
	if diff := cmp.Diff(want, job.Spec.PodFailurePolicy); diff != "" {
		t.Errorf("podFailurePolicy (-want +got):\n%s", diff)
	}

	t.Run("without exit codes only disruptions are ignored", func(t *testing.T) {
		job := prepare(t, cfg, Run{}, PrepareOptions{FailurePolicy: &FailurePolicy{}})
		if p := job.Spec.PodFailurePolicy; p == nil || len(p.Rules) != 1 || p.Rules[0].Action != batchv1.PodFailurePolicyActionIgnore {
			t.Errorf("podFailurePolicy %+v", p)
		}
	})
	t.Run("none unless asked", func(t *testing.T) {
		if p := prepare(t, cfg, Run{}, PrepareOptions{}).Spec.PodFailurePolicy; p != nil {
			t.Errorf("podFailurePolicy %+v", p)
		}
	})
	t.Run("the Config is not changed", func(t *testing.T) {
		if _, ok := cfg.JobManifest["spec"].(map[string]any)["podFailurePolicy"]; ok {
			t.Error("Prepare wrote the policy into the shared Config")
		}
	})

	bad := []struct {
		name, job string
		policy    FailurePolicy
		want      []string
	}{
		{"exit code 0 and a negative one", baseJob, FailurePolicy{FailJobOnExitCodes: []int32{0, -2, 1}},
			[]string{"options.failurePolicy.failJobOnExitCodes[0]: Invalid value: 0", "options.failurePolicy.failJobOnExitCodes[1]: Invalid value: -2"}},
		{"a template with its own policy", strings.Replace(baseJob, "spec:\n  template:", "spec:\n  podFailurePolicy: {rules: []}\n  template:", 1), FailurePolicy{},
			[]string{"job_configuration.job_manifest.spec.podFailurePolicy: Forbidden"}},
		{"a restartPolicy other than Never", strings.Replace(baseJob, "restartPolicy: Never", "restartPolicy: OnFailure", 1), FailurePolicy{FailJobOnExitCodes: []int32{3}},
			[]string{"job_configuration.job_manifest.spec.template.spec.restartPolicy: Invalid value", "must have value Never"}},
		{"a run container without a name", strings.Replace(baseJob, "- name: main\n          image: img", "- image: img", 1), FailurePolicy{FailJobOnExitCodes: []int32{3}},
			[]string{"job_configuration.job_manifest.spec.template.spec.containers[0].name: Required value"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configOf(t, tt.job, nil).Prepare(Run{ID: "r"}, PrepareOptions{FailurePolicy: &tt.policy})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("too many exit codes", func(t *testing.T) {
		var codes []int32
		for c := int32(1); c <= maxExitCodes+1; c++ {
			codes = append(codes, c)
		}
		_, err := cfg.Prepare(Run{ID: "r"}, PrepareOptions{FailurePolicy: &FailurePolicy{FailJobOnExitCodes: codes}})
		if err == nil || !strings.Contains(err.Error(), "Too many: 256") {
			t.Errorf("got %v", err)
		}
	})
}

// TestCustomizationsCommonPatches checks the patches workers use most.
func TestCustomizationsCommonPatches(t *testing.T) {
	cfg, err := Default().Render(map[string]any{"command": "a b", "env": map[string]any{"A": "1"}}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job := prepare(t, cfg, Run{}, PrepareOptions{Customizations: []byte(`[{"op": "add", "path": "/spec/suspend", "value": true},` +
		`{"op":"add","path":"/spec/template/spec/containers/0/env/X","value":"x"},` +
		`{"op":"remove","path":"/spec/backoffLimit"}]`)})
	if s := job.Spec.Suspend; s == nil || !*s {
		t.Errorf("suspend %v, want true", s)
	}
	if job.Spec.BackoffLimit != nil {
		t.Errorf("backoffLimit %d, want removed", *job.Spec.BackoffLimit)
	}
	env := job.Spec.Template.Spec.Containers[0].Env
	if len(env) != 2 || env[1].Name != "X" || env[1].Value != "x" {
		t.Errorf("env %+v, want A then X=x", env)
	}
	// A negative index is json-patch's extension.
	job = prepare(t, cfg, Run{}, PrepareOptions{Customizations: []byte(`[{"op":"add","path":"/spec/template/spec/containers/-1/image","value":"z"}]`)})
	if got := job.Spec.Template.Spec.Containers[0].Image; got != "z" {
		t.Errorf("image %q, want z", got)
	}
}

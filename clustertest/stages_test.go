package clustertest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

var updateTestdata = flag.Bool("update-testdata", false, "rewrite the golden files under testdata/")

// stage is the part of a kwok Stage these tests read.
type stage struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ResourceRef struct {
			Kind string `json:"kind"`
		} `json:"resourceRef"`
		Selector struct {
			MatchExpressions []struct {
				Key      string   `json:"key"`
				Operator string   `json:"operator"`
				Values   []string `json:"values"`
			} `json:"matchExpressions"`
		} `json:"selector"`
		Next struct {
			StatusTemplate string `json:"statusTemplate"`
			Delete         bool   `json:"delete"`
		} `json:"next"`
	} `json:"spec"`
}

func loadStages(t *testing.T) map[string]stage {
	t.Helper()
	config, err := stagesConfig()
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]stage{}
	for _, doc := range strings.Split(string(config), "---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var s stage
		if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
			t.Fatalf("parse stage: %v\n%s", err, doc)
		}
		if s.Kind != "Stage" || s.Metadata.Name == "" {
			t.Fatalf("not a named Stage:\n%s", doc)
		}
		if _, dup := stages[s.Metadata.Name]; dup {
			t.Fatalf("stage %s defined twice", s.Metadata.Name)
		}
		stages[s.Metadata.Name] = s
	}
	return stages
}

func TestStagesConfigHoldsEveryStageFile(t *testing.T) {
	stages := loadStages(t)
	files, err := filepath.Glob("stages/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, f := range files {
		want = append(want, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	for name := range stages {
		got = append(got, name)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stage names differ from file names (-files +stages):\n%s", diff)
	}
}

// TestPodStagesAreMutuallyExclusive evaluates the selectors on pods in
// every state the harness makes: at most one pod stage may match each, so
// kwok never chooses at random.
func TestPodStagesAreMutuallyExclusive(t *testing.T) {
	stages := loadStages(t)
	job := `"ownerReferences":[{"kind":"Job","name":"j"}]`
	tests := []struct {
		name string
		pod  string
		want string // the one stage that matches, or "" for none
	}{
		{"an unscheduled pod waits for the harness", `{"metadata":{},"status":{"phase":"Pending"}}`, ""},
		{"a pod whose logs are set up starts",
			`{"metadata":{"annotations":{"test.kubeworker.io/logs-ready":"true"}},"status":{"phase":"Pending"}}`, "pod-ready"},
		{"an image-pull pod fails to pull, logs or not",
			`{"metadata":{"annotations":{"test.kubeworker.io/image-pull":"ErrImagePull","test.kubeworker.io/logs-ready":"true"}},"status":{"phase":"Pending"}}`, "pod-image-pull"},
		{"an image-pull pod stays once waiting",
			`{"metadata":{"annotations":{"test.kubeworker.io/image-pull":"ErrImagePull"}},"status":{"phase":"Pending","containerStatuses":[{"name":"main"}]}}`, ""},
		{"a running Job pod completes", `{"metadata":{` + job + `},"status":{"phase":"Running"}}`, "pod-complete"},
		{"a running Job pod with evict is evicted",
			`{"metadata":{` + job + `,"annotations":{"test.kubeworker.io/evict":"low memory"}},"status":{"phase":"Running"}}`, "pod-evict"},
		{"a running bare pod runs on", `{"metadata":{},"status":{"phase":"Running"}}`, ""},
		{"a running bare pod with evict is evicted",
			`{"metadata":{"annotations":{"test.kubeworker.io/evict":""}},"status":{"phase":"Running"}}`, "pod-evict"},
		{"a deleted running pod goes", `{"metadata":{` + job + `,"deletionTimestamp":"2026-01-01T00:00:00Z"},"status":{"phase":"Running"}}`, "pod-delete"},
		{"a deleted pending pod goes", `{"metadata":{"deletionTimestamp":"2026-01-01T00:00:00Z","annotations":{"test.kubeworker.io/logs-ready":"true"}},"status":{"phase":"Pending"}}`, "pod-delete"},
		{"a deleted pod scripted to stay Terminating stays",
			`{"metadata":{` + job + `,"deletionTimestamp":"2026-01-01T00:00:00Z","annotations":{"test.kubeworker.io/stuck-terminating":"true"}},"status":{"phase":"Running"}}`, ""},
		{"a finished pod stays", `{"metadata":{` + job + `},"status":{"phase":"Succeeded"}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pod any
			if err := json.Unmarshal([]byte(tt.pod), &pod); err != nil {
				t.Fatal(err)
			}
			var matched []string
			for name, s := range stages {
				if s.Spec.ResourceRef.Kind == "Pod" && selects(t, s, pod) {
					matched = append(matched, name)
				}
			}
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if diff := cmp.Diff(want, matched); diff != "" {
				t.Errorf("matching stages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNodeStagesAreMutuallyExclusive(t *testing.T) {
	stages := loadStages(t)
	for _, tt := range []struct{ node, want string }{
		{`{"status":{}}`, "node-initialize"},
		{`{"status":{"conditions":[{"type":"Ready","status":"False"}]}}`, "node-initialize"},
		{`{"status":{"conditions":[{"type":"Ready","status":"True"}]}}`, "node-heartbeat"},
	} {
		var node any
		if err := json.Unmarshal([]byte(tt.node), &node); err != nil {
			t.Fatal(err)
		}
		var matched []string
		for name, s := range stages {
			if s.Spec.ResourceRef.Kind == "Node" && selects(t, s, node) {
				matched = append(matched, name)
			}
		}
		if diff := cmp.Diff([]string{tt.want}, matched); diff != "" {
			t.Errorf("node %s: matching stages (-want +got):\n%s", tt.node, diff)
		}
	}
}

// selects evaluates a stage's selector as kwok does: every expression must
// hold; Exists means some value is not null, In means some value is listed.
func selects(t *testing.T, s stage, obj any) bool {
	for _, e := range s.Spec.Selector.MatchExpressions {
		values := query(t, e.Key, obj)
		var exists, in bool
		for _, v := range values {
			if v != nil {
				exists = true
			}
			if str, ok := v.(string); ok && slices.Contains(e.Values, str) {
				in = true
			}
		}
		var ok bool
		switch e.Operator {
		case "Exists":
			ok = exists
		case "DoesNotExist":
			ok = !exists
		case "In":
			ok = in
		case "NotIn":
			ok = !in
		default:
			t.Fatalf("stage %s: unknown operator %q", s.Metadata.Name, e.Operator)
		}
		if !ok {
			return false
		}
	}
	return true
}

var (
	selectRe = regexp.MustCompile(`^select\( \.(\w+) == "(\w+)" \)$`)
	stepRe   = regexp.MustCompile(`^(\.\w+|\["[^"]+"\]|\.\[\]|\.)`)
)

// query evaluates the small subset of jq the stages use: paths of .field,
// ["key"] and .[] steps, joined by pipes, and select( .f == "v" ).
func query(t *testing.T, expr string, obj any) []any {
	values := []any{obj}
	for _, part := range strings.Split(expr, " | ") {
		if m := selectRe.FindStringSubmatch(part); m != nil {
			var kept []any
			for _, v := range values {
				if o, ok := v.(map[string]any); ok && o[m[1]] == m[2] {
					kept = append(kept, v)
				}
			}
			values = kept
			continue
		}
		for rest := part; rest != ""; {
			step := stepRe.FindString(rest)
			if step == "" {
				t.Fatalf("jq expression %q: cannot read %q", expr, rest)
			}
			rest = rest[len(step):]
			var next []any
			for _, v := range values {
				next = append(next, applyStep(step, v)...)
			}
			values = next
		}
	}
	return values
}

func applyStep(step string, v any) []any {
	switch {
	case step == ".":
		return []any{v}
	case step == ".[]":
		list, _ := v.([]any)
		return list
	case strings.HasPrefix(step, "["):
		key, _ := strconv.Unquote(step[1 : len(step)-1])
		o, _ := v.(map[string]any)
		return []any{o[key]}
	default:
		o, _ := v.(map[string]any)
		return []any{o[step[1:]]}
	}
}

// TestStageTemplates renders each stage's status template for the pods and
// nodes under testdata/stages and compares the status with the golden
// file. Rendering uses text/template with stand-ins for the sprig and kwok
// functions the stages call. Run with -update-testdata to rewrite.
func TestStageTemplates(t *testing.T) {
	stages := loadStages(t)
	inputs, err := filepath.Glob("testdata/stages/*.input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no inputs under testdata/stages")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".input.yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var input struct {
				Stage  string         `json:"stage"`
				Object map[string]any `json:"object"`
			}
			if err := yaml.Unmarshal(data, &input); err != nil {
				t.Fatal(err)
			}
			s, ok := stages[input.Stage]
			if !ok {
				t.Fatalf("no stage %q", input.Stage)
			}
			if !selects(t, s, input.Object) {
				t.Errorf("stage %s does not select the input", input.Stage)
			}
			got := renderStatus(t, s.Spec.Next.StatusTemplate, input.Object)
			golden := strings.TrimSuffix(in, ".input.yaml") + ".output.yaml"
			if *updateTestdata {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-testdata to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("status differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// renderStatus renders tmpl for obj and returns the status as canonical
// YAML, failing if it is not valid YAML.
func renderStatus(t *testing.T, tmpl string, obj any) []byte {
	t.Helper()
	tp, err := template.New("status").Funcs(stageFuncs()).Parse(tmpl)
	if err != nil {
		t.Fatalf("parse template: %v", err)
	}
	var b bytes.Buffer
	if err := tp.Execute(&b, obj); err != nil {
		t.Fatalf("render template: %v", err)
	}
	var status map[string]any
	if err := yaml.Unmarshal(b.Bytes(), &status); err != nil {
		t.Fatalf("rendered status is not YAML: %v\n%s", err, b.String())
	}
	out, err := yaml.Marshal(status)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stageFuncs stands in for the sprig and kwok template functions the
// stages use, with a fixed clock and addresses.
func stageFuncs() template.FuncMap {
	const now = "2026-01-02T03:04:05.123456789Z"
	return template.FuncMap{
		"Now":     func() string { return now },
		"Version": func() string { return "v0.8.0" },
		"Quote": func(v any) string {
			if s, ok := v.(string); ok {
				return strconv.Quote(s)
			}
			b, _ := json.Marshal(v)
			return strconv.Quote(string(b))
		},
		"YAML": func(v any, indent int) (string, error) {
			b, err := yaml.Marshal(v)
			pad := strings.Repeat("  ", indent)
			return strings.ReplaceAll("\n"+strings.TrimRight(string(b), "\n"), "\n", "\n"+pad), err
		},
		"NodeConditions": func() []any {
			return []any{map[string]any{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}}
		},
		"NodeIP":      func() string { return "127.0.0.1" },
		"NodePort":    func() int { return 10250 },
		"NodeIPsWith": func(string) []string { return []string{"127.0.0.1"} },
		"PodIPsWith":  func(string, any, any, any, any) []string { return []string{"127.1.0.7"} },
		"dict":        func() map[string]any { return map[string]any{} },
		"list":        func() []any { return nil },
		"atoi":        func(s any) int { n, _ := strconv.Atoi(fmt.Sprint(s)); return n },
		"ternary": func(a, b any, cond bool) any {
			if cond {
				return a
			}
			return b
		},
	}
}

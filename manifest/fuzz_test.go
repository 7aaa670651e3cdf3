package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FuzzLoad feeds arbitrary bytes through Load, Render and Prepare: nothing
// may panic, and every failure is a *manifest.Error with at least one entry.
func FuzzLoad(f *testing.F) {
	f.Add(defaultYAML)
	f.Add([]byte(`{"job_configuration": {"job_manifest": {"apiVersion": "batch/v1", "kind": "Job"}}}`))
	f.Add([]byte("job_configuration: {job_manifest: {spec: \"{{ a.b[0] }}\"}}\nvariables: {properties: {a: {default: {b: [1]}}}}"))
	f.Add([]byte("job_configuration: {job_manifest: {x: \"{{ x\"}}"))
	f.Add([]byte("- [\n"))
	f.Add([]byte("a: b\n---\nc: d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tmpl, err := Load(data)
		if err != nil {
			mustBeManifestError(t, err)
			return
		}
		cfg, err := tmpl.Render(nil, RenderOptions{ValuesOptions: ValuesOptions{AllowUnknown: true}})
		if err != nil {
			mustBeManifestError(t, err)
			return
		}
		if _, err := cfg.Prepare(Run{ID: "fuzz"}, PrepareOptions{}); err != nil {
			mustBeManifestError(t, err)
		}
		if _, err := LoadJob(data); err != nil {
			mustBeManifestError(t, err)
		}
	})
}

// FuzzRender checks the rendering rules on arbitrary template text and
// values: no panic; malformed text is an error; a value is inserted exactly
// as it is, never scanned again.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"{{ v }}", "a{{v}}b", "{{ $HOME }}", "{{ m.k[0] }}", "{{", "}}{{", "{{ a b }}", "x", "{{{ v }}}", "{{ a }}}}", "{{-}}", "{{ 0 }}", "{{  v_1-x  }}"} {
		f.Add(s, "{{ v }}")
		f.Add(s, "plain")
	}
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		vals := map[string]any{"v": value, "n": nil, "m": map[string]any{"k": []any{value}}}
		env := func(k string) (string, bool) { return value, k == "HOME" }

		r := renderer{values: valueSet{given: vals}, env: env, allowUnknown: true, allowMissingEnv: true}
		out, _ := renderAt(&r, tmpl, field.NewPath("x"))
		_, perr := findPlaceholders(tmpl)
		if (perr != nil) != (len(r.errs) > 0) {
			t.Fatalf("%q: parse error %v but render errors %v", tmpl, perr, r.errs)
		}
		if perr == nil && !strings.Contains(tmpl, "{{") && out != tmpl {
			t.Fatalf("%q without placeholders rendered as %q", tmpl, out)
		}

		r = renderer{values: valueSet{given: vals}, allowUnknown: true}
		if got, _ := renderAt(&r, "{{ v }}", field.NewPath("x")); got != value {
			t.Fatalf("whole placeholder gave %q, want the value %q", got, value)
		}
		if got, _ := renderAt(&r, "<{{ v }}>", field.NewPath("x")); got != "<"+value+">" {
			t.Fatalf("embedded placeholder gave %q, want <%s>", got, value)
		}
	})
}

func mustBeManifestError(t *testing.T, err error) {
	t.Helper()
	var me *Error
	if !errors.As(err, &me) || len(me.Errs) == 0 {
		t.Fatalf("got %T %v, want a *manifest.Error with entries", err, err)
	}
	for _, fe := range me.Errs {
		if fe.Field == "" {
			t.Fatalf("an entry has no path: %v", fe)
		}
	}
}

// FuzzCustomizations applies arbitrary patches through Prepare: nothing
// panics, a failure is a *manifest.Error, and the Config's manifest is left
// as it was.
func FuzzCustomizations(f *testing.F) {
	for _, p := range []string{
		`[{"op": "add", "path": "/spec/suspend", "value": true}]`,
		`[{"op":"add","path":"/spec/template/spec/containers/0/env/-","value":{"name":"X","value":null}}]`,
		`[{"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"side","image":"i"}},{"op":"remove","path":"/spec/template/spec/containers/0/args/1"}]`,
		`[{"op":"replace","path":"/metadata/labels/team","value":"ops"},{"op":"remove","path":"/spec/backoffLimit"}]`,
		`[{"op":"add","path":"/metadata/annotations","value":{"a~1b":"1","n":null}},{"op":"add","path":"/metadata/annotations/c~0d","value":2}]`,
		`[{"op":"replace","path":"/spec/template/spec/containers/0/args/0","value":[1,null,{"k":null}]}]`,
		`[{"op":"add","path":"/spec/template/spec/containers/1","value":{}}]`,
		`[{"op":"remove","path":"/spec/missing"}]`,
		`[{"op":"add","path":"/spec/template/spec/containers/-1","value":{}}]`,
		`[{"op":"add","path":"/spec/template/spec/containers/01","value":{}}]`,
		`[{"op":"move","from":"/spec/parallelism","path":"/spec/x"}]`,
		`[{"op":"add","path":"","value":{}}]`, `[]`, `{}`, `[{"op":"add","path":"/a"}]`,
	} {
		f.Add(p)
	}
	cfg, err := Default().Render(map[string]any{"command": "a b c", "labels": map[string]any{"team": "data"}, "env": map[string]any{"A": "1"}}, RenderOptions{})
	if err != nil {
		f.Fatal(err)
	}
	before := deepCopy(cfg.JobManifest)
	f.Fuzz(func(t *testing.T, patch string) {
		_, err := cfg.Prepare(Run{ID: "fuzz"}, PrepareOptions{Customizations: []byte(patch)})
		if err != nil {
			mustBeManifestError(t, err)
		}
		if !cmp.Equal(cfg.JobManifest, before) {
			t.Fatalf("%s changed the Config's manifest", patch)
		}
	})
}

// FuzzEnv renders env values of arbitrary names and text through the
// default template: nothing panics, each name appears once, and a value's
// $(NAME) reference comes after NAME unless the references form a cycle.
func FuzzEnv(f *testing.F) {
	f.Add("A", "$(B)", "B", "x", "C", "$(A)$(B)")
	f.Add("A", "$(B)", "B", "$(A)", "C", "$$(A)")
	f.Add("X", "", "Y", "$(", "Z", "$(Z)")
	tmpl := Default()
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2, n3, v3 string) {
		env := map[string]any{n1: v1, n2: v2, n3: v3}
		cfg, err := tmpl.Render(map[string]any{"env": env}, RenderOptions{})
		if err != nil {
			mustBeManifestError(t, err)
			return
		}
		job, err := cfg.Prepare(Run{ID: "fuzz"}, PrepareOptions{Env: map[string]string{n2: "worker"}})
		if err != nil {
			mustBeManifestError(t, err)
			return
		}
		list := job.Spec.Template.Spec.Containers[0].Env
		at := map[string]int{}
		for i, e := range list {
			if _, dup := at[e.Name]; dup {
				t.Fatalf("%q appears twice in %+v", e.Name, list)
			}
			at[e.Name] = i
		}
		if len(at) != len(env) {
			t.Fatalf("env %v gave %+v", env, list)
		}
		for i, e := range list {
			for _, r := range envRefs(e.Value) {
				if j, ok := at[r]; ok && j > i && !cyclic(list, r, e.Name) {
					t.Fatalf("%s refers to %s, which comes later: %+v", e.Name, r, list)
				}
			}
		}
	})
}

// cyclic reports whether from reaches to through references.
func cyclic(list []corev1.EnvVar, from, to string) bool {
	refs := map[string][]string{}
	for _, e := range list {
		refs[e.Name] = envRefs(e.Value)
	}
	seen := map[string]bool{}
	var walk func(string) bool
	walk = func(n string) bool {
		if n == to {
			return true
		}
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, r := range refs[n] {
			if walk(r) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

package manifest

import (
	"encoding/json"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	kjson "sigs.k8s.io/json"
)

var benchValues = map[string]any{
	"image": "registry.example.com/etl:1.4", "command": "python -m etl --verbose",
	"env": map[string]any{"A": "1", "B": "2"}, "labels": map[string]any{"team": "data"},
	"cpu_request": "500m", "memory_limit": "1Gi",
}

// BenchmarkRenderPrepare is what a worker pays per run: render the default
// template with values and prepare the Job.
func BenchmarkRenderPrepare(b *testing.B) {
	tmpl := Default()
	run := Run{ID: "0b6f1c2e-8d1a-4f7e-9c55-3a2b1d0e9f10", Name: "nightly etl"}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := tmpl.Render(benchValues, RenderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cfg.Prepare(run, PrepareOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStrictDecodeFloor is the floor: strictly decoding the finished
// manifest's JSON into a batchv1.Job, which any validating path must pay.
func BenchmarkStrictDecodeFloor(b *testing.B) {
	cfg, err := Default().Render(benchValues, RenderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	job, err := cfg.Prepare(Run{ID: "r", Name: "nightly etl"}, PrepareOptions{})
	if err != nil {
		b.Fatal(err)
	}
	data, err := json.Marshal(job)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var j batchv1.Job
		if strict, err := kjson.UnmarshalStrict(data, &j); err != nil || len(strict) > 0 {
			b.Fatal(err, strict)
		}
	}
}

// BenchmarkRenderPrepareCustomized is BenchmarkRenderPrepare with a
// customization patch, as a worker that suspends its Jobs or adds a
// sidecar pays.
func BenchmarkRenderPrepareCustomized(b *testing.B) {
	tmpl := Default()
	run := Run{ID: "0b6f1c2e-8d1a-4f7e-9c55-3a2b1d0e9f10", Name: "nightly etl"}
	opts := PrepareOptions{Customizations: []byte(`[{"op": "add", "path": "/spec/suspend", "value": true}]`)}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := tmpl.Render(benchValues, RenderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cfg.Prepare(run, opts); err != nil {
			b.Fatal(err)
		}
	}
}

package benchsuite

import (
	"encoding/json"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	kjson "sigs.k8s.io/json"

	"github.com/kubeworker/kubeworker/manifest"
)

// Prepare compares what a Worker pays per run to make its Job with the
// floor any validating path pays: decoding the finished Job strictly.
type Prepare struct {
	// RenderPrepare is render + prepare of the default template with
	// typical values; StrictDecode is strict decoding of the result's JSON
	// into a batchv1.Job. Both per operation.
	RenderPrepare, StrictDecode float64 // ns
	// RenderPrepareAllocs is allocations per render + prepare.
	RenderPrepareAllocs int64
	// Ratio is RenderPrepare / StrictDecode.
	Ratio float64
}

var prepareValues = map[string]any{
	"image": "registry.example.com/etl:1.4", "command": "python -m etl --verbose",
	"env": map[string]any{"A": "1", "B": "2"}, "labels": map[string]any{"team": "data"},
	"cpu_request": "500m", "memory_limit": "1Gi",
}

func measurePrepare() (Prepare, error) {
	tmpl := manifest.Default()
	run := manifest.Run{ID: "0b6f1c2e-8d1a-4f7e-9c55-3a2b1d0e9f10", Name: "nightly etl"}
	rp := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cfg, err := tmpl.Render(prepareValues, manifest.RenderOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cfg.Prepare(run, manifest.PrepareOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	cfg, err := tmpl.Render(prepareValues, manifest.RenderOptions{})
	if err != nil {
		return Prepare{}, err
	}
	job, err := cfg.Prepare(run, manifest.PrepareOptions{})
	if err != nil {
		return Prepare{}, err
	}
	data, err := json.Marshal(job)
	if err != nil {
		return Prepare{}, err
	}
	sd := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			var j batchv1.Job
			if strict, err := kjson.UnmarshalStrict(data, &j); err != nil || len(strict) > 0 {
				b.Fatal(err, strict)
			}
		}
	})
	p := Prepare{RenderPrepare: float64(rp.NsPerOp()), StrictDecode: float64(sd.NsPerOp()), RenderPrepareAllocs: rp.AllocsPerOp()}
	if p.StrictDecode > 0 {
		p.Ratio = p.RenderPrepare / p.StrictDecode
	}
	return p, nil
}

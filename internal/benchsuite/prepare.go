package benchsuite

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

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
	// Ratio is RenderPrepare / StrictDecode, of the median round (see
	// prepareRounds); the two times are that round's.
	Ratio float64
}

var prepareValues = map[string]any{
	"image": "registry.example.com/etl:1.4", "command": "python -m etl --verbose",
	"env": map[string]any{"A": "1", "B": "2"}, "labels": map[string]any{"team": "data"},
	"cpu_request": "500m", "memory_limit": "1Gi",
}

// Rounds of the render+prepare comparison: each round times a batch of
// one, then a batch of the other, so that the machine's noise (the local
// cluster shares its two cores) falls on both alike; the median round's
// ratio counts.
const (
	prepareRounds = 41
	prepareBatch  = 100
)

// MeasurePrepare measures Prepare. It is pure CPU work: run it while no
// cluster shares the machine, since a control plane that is still
// settling slows the two sides unevenly.
func MeasurePrepare() (Prepare, error) {
	tmpl := manifest.Default()
	run := manifest.Run{ID: "0b6f1c2e-8d1a-4f7e-9c55-3a2b1d0e9f10", Name: "nightly etl"}
	renderPrepare := func() error {
		cfg, err := tmpl.Render(prepareValues, manifest.RenderOptions{})
		if err == nil {
			_, err = cfg.Prepare(run, manifest.PrepareOptions{})
		}
		return err
	}
	if err := renderPrepare(); err != nil {
		return Prepare{}, err
	}
	cfg, _ := tmpl.Render(prepareValues, manifest.RenderOptions{})
	job, _ := cfg.Prepare(run, manifest.PrepareOptions{})
	data, err := json.Marshal(job)
	if err != nil {
		return Prepare{}, err
	}
	strictDecode := func() error {
		var j batchv1.Job
		strict, err := kjson.UnmarshalStrict(data, &j)
		if err == nil && len(strict) > 0 {
			err = fmt.Errorf("strict decode: %v", strict)
		}
		return err
	}
	if err := strictDecode(); err != nil {
		return Prepare{}, err
	}
	batch := func(f func() error) (time.Duration, error) {
		start := time.Now()
		for range prepareBatch {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return time.Since(start) / prepareBatch, nil
	}
	type round struct{ rp, sd time.Duration }
	rounds := make([]round, 0, prepareRounds)
	for range prepareRounds {
		rp, err := batch(renderPrepare)
		if err != nil {
			return Prepare{}, err
		}
		sd, err := batch(strictDecode)
		if err != nil {
			return Prepare{}, err
		}
		rounds = append(rounds, round{rp, sd})
	}
	slices.SortFunc(rounds, func(a, b round) int {
		return cmp.Compare(float64(a.rp)/float64(a.sd), float64(b.rp)/float64(b.sd))
	})
	mid := rounds[len(rounds)/2]
	p := Prepare{
		RenderPrepare: float64(mid.rp), StrictDecode: float64(mid.sd),
		RenderPrepareAllocs: int64(testing.AllocsPerRun(100, func() { _ = renderPrepare() })),
		Ratio:               float64(mid.rp) / float64(mid.sd),
	}
	return p, nil
}

package benchsuite

import (
	"cmp"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	kjson "sigs.k8s.io/json"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/manifest"
)

// Prepare compares what a Worker pays per run to make its Job with the
// floor any validating path pays: decoding the finished Job strictly.
type Prepare struct {
	// RenderPrepare is render + prepare of the default template with
	// typical values; StrictDecode is strict decoding of the result's JSON
	// into a batchv1.Job. Both are the process's CPU time per operation,
	// the garbage collector's work on other threads included.
	RenderPrepare, StrictDecode float64 // ns
	// RenderPrepareAllocs is allocations per render + prepare.
	RenderPrepareAllocs int64
	// Ratio is RenderPrepare / StrictDecode, of the median round (see
	// prepareRounds); the two times are that round's.
	Ratio float64
	// WallRatio is the same by elapsed time, which on an idle second core
	// leaves out the collector's work and on a busy machine takes in other
	// processes' turns.
	WallRatio float64
}

var prepareValues = map[string]any{
	"image": "registry.example.com/etl:1.4", "command": "python -m etl --verbose",
	"env": map[string]any{"A": "1", "B": "2"}, "labels": map[string]any{"team": "data"},
	"cpu_request": "500m", "memory_limit": "1Gi",
}

// Rounds of the render+prepare comparison: each round times a batch of
// one, then a batch of the other, so that the machine's noise falls on both
// alike; the median round's ratio counts. Each batch starts from a
// collected heap and is long enough for several collections, so that each
// side pays for the garbage it makes, and only for that.
const (
	prepareRounds = 21
	prepareBatch  = 2000
)

// MeasurePrepare measures Prepare. It is pure CPU work: run it while no
// cluster shares the machine, since a control plane that is still
// settling slows the two sides unevenly.
func MeasurePrepare() (Prepare, error) { return measurePrepare(prepareRounds, prepareBatch) }

func measurePrepare(rounds, batchOps int) (Prepare, error) {
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
	type cost struct{ cpu, wall time.Duration }
	batch := func(f func() error) (cost, error) {
		runtime.GC()
		cpu0, err := clustertest.ProcessCPUTime(0)
		if err != nil {
			return cost{}, err
		}
		start := time.Now()
		for range batchOps {
			if err := f(); err != nil {
				return cost{}, err
			}
		}
		wall := time.Since(start)
		cpu1, err := clustertest.ProcessCPUTime(0)
		n := time.Duration(batchOps)
		return cost{(cpu1 - cpu0) / n, wall / n}, err
	}
	type round struct{ rp, sd cost }
	all := make([]round, 0, rounds)
	for range rounds {
		rp, err := batch(renderPrepare)
		if err != nil {
			return Prepare{}, err
		}
		sd, err := batch(strictDecode)
		if err != nil {
			return Prepare{}, err
		}
		all = append(all, round{rp, sd})
	}
	ratio := func(r round, cpu bool) float64 {
		if cpu {
			return float64(r.rp.cpu) / float64(r.sd.cpu)
		}
		return float64(r.rp.wall) / float64(r.sd.wall)
	}
	byRatio := func(cpu bool) round {
		slices.SortFunc(all, func(a, b round) int { return cmp.Compare(ratio(a, cpu), ratio(b, cpu)) })
		return all[len(all)/2]
	}
	wall := byRatio(false)
	mid := byRatio(true)
	return Prepare{
		RenderPrepare: float64(mid.rp.cpu), StrictDecode: float64(mid.sd.cpu),
		RenderPrepareAllocs: int64(testing.AllocsPerRun(100, func() { _ = renderPrepare() })),
		Ratio:               ratio(mid, true),
		WallRatio:           ratio(wall, false),
	}, nil
}

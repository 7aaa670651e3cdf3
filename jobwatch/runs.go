package jobwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
)

// RunJobs returns the names of the Jobs in namespace whose pod template
// carries manifest.LabelRunID=runID (manifest.Prepare sets it on the Job
// and its pod template alike), sorted. It reads the namespace's shared
// stream, starting it if need be, and costs no request of its own: a
// creator can ask it before every create. It waits for the stream's first
// sync, and fails at once while listing or watching Jobs there fails
// (Forbidden, say).
func (w *Watcher) RunJobs(ctx context.Context, namespace, runID string) ([]string, error) {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return nil, fmt.Errorf("%w: namespace %q: %s", ErrInvalidRef, namespace, strings.Join(msgs, "; "))
	}
	s, err := w.stream(namespace)
	if err != nil {
		return nil, err
	}
	synced := s.synced[0] // the Job informer's
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cache.IsDone(synced) {
		if err := s.lws[0].failingErr(); err != nil {
			return nil, fmt.Errorf("jobwatch: the Jobs of namespace %s: %w", namespace, err)
		}
		select {
		case <-synced.Done():
		case <-tick.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.ctx.Done():
			return nil, ErrClosed
		}
	}
	objs, err := s.jobs.GetIndexer().ByIndex(runIndex, runID)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok {
			names = append(names, j.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

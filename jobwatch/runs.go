package jobwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
)

// RunJobs returns the names of the Jobs in namespace whose pod template
// carries manifest.LabelRunID=runID (manifest.Prepare sets it on the Job
// and its pod template alike), sorted. It reads the namespace's shared
// stream, starting it if need be, and costs no request: a creator can ask
// it before every create. It never waits: until the stream's first sync
// it returns ErrNotSynced (wrapping why, if listing or watching fails).
func (w *Watcher) RunJobs(ctx context.Context, namespace, runID string) ([]string, error) {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return nil, fmt.Errorf("%w: namespace %q: %s", ErrInvalidRef, namespace, strings.Join(msgs, "; "))
	}
	s, err := w.stream(namespace)
	if err != nil {
		return nil, err
	}
	if !cache.IsDone(s.synced[0]) { // the Job informer's
		if cause := s.lws[0].failingErr(); cause != nil {
			return nil, fmt.Errorf("%w: Jobs of namespace %s: %w", ErrNotSynced, namespace, cause)
		}
		return nil, fmt.Errorf("%w: Jobs of namespace %s", ErrNotSynced, namespace)
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

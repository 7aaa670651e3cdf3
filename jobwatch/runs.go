package jobwatch

import (
	"context"
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/validation"
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
	// The Job informer alone, and any list or watch failure is final
	// here: the caller has a way that does not need the stream.
	if err := s.waitSynced(ctx, 1, func(error) bool { return true }); err != nil {
		return nil, err
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

// Jobs returns the Jobs in namespace that pass the Watcher's selector, as
// its shared stream keeps them (trimmed: labels, the annotations that
// kubeworker reads, the spec fields and status that Wait reads; no pod
// template beyond its labels). They are the stream's own objects: read
// them, never change them. It starts the stream if need be, waits for its
// first sync, and costs no request of its own.
func (w *Watcher) Jobs(ctx context.Context, namespace string) ([]*batchv1.Job, error) {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return nil, fmt.Errorf("%w: namespace %q: %s", ErrInvalidRef, namespace, strings.Join(msgs, "; "))
	}
	s, err := w.stream(namespace)
	if err != nil {
		return nil, err
	}
	if err := s.waitSynced(ctx, 1, func(error) bool { return true }); err != nil {
		return nil, err
	}
	objs := s.jobs.GetStore().List()
	jobs := make([]*batchv1.Job, 0, len(objs))
	for _, o := range objs {
		if j, ok := o.(*batchv1.Job); ok {
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

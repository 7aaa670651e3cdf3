package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Start readies the Worker for its first Runs, as a controller syncs its
// caches before it takes work, in its own cluster and in each of
// Options.Clusters: it reads the cluster's UID, which names every run's
// PID, and starts the shared watch streams of the Worker's namespaces
// (Options.Namespace and Options.Namespaces, or the Cluster's
// Namespaces, with the same default as List) and waits until they have
// synced. The clusters that runs name are readied on their first run.
// Calling it is optional, since Run does each on first use, but a long-lived worker
// should: its first Runs then wait for neither, and a missing permission
// shows as Start's error before any work is taken. It returns early when
// the API server refuses a watch (Forbidden, Unauthorized) and when ctx
// ends; give it a deadline. A custom Identity or Waiter is readied when it
// is a UIDReader or a Syncer, and skipped otherwise.
//
// What is retried, and for how long: the UID read (default Identity) on a
// transient failure (timeouts, 429, 5xx, dropped connections) under
// Options.Retry, for up to its deadline (3 minutes by default) and never
// past ctx; the watch streams list and watch again after any failure but
// Forbidden and Unauthorized, until ctx ends.
func (w *Worker) Start(ctx context.Context) error {
	if !w.enter() {
		return ErrClosed
	}
	defer w.running.Done()
	for _, c := range w.clusters.upFront() {
		err := w.start(ctx, c)
		c.startErr.Store(&err)
		if err != nil {
			return fmt.Errorf("worker: start%s: %w", inCluster(c), err)
		}
	}
	if w.fleet != nil {
		if err := w.fleet.start(ctx); err != nil {
			return fmt.Errorf("worker: start: %w", err)
		}
	}
	return nil
}

// start readies cluster c.
func (w *Worker) start(ctx context.Context, c *clusterParts) error {
	if id, ok := c.parts.Identity.(UIDReader); ok {
		if _, err := id.UID(ctx); err != nil {
			return err
		}
	}
	s, ok := c.parts.Waiter.(Syncer)
	if !ok {
		return nil
	}
	nss, err := w.namespaces(c)
	if err != nil {
		return err
	}
	if ns := w.opts.Namespace; ns != "" && len(c.namespaces) == 0 && !slices.Contains(nss, ns) {
		nss = append(slices.Clip(nss), ns)
	}
	return s.WaitForSync(ctx, nss...)
}

// Ready reports whether the Worker is ready to follow runs at once: nil
// when the Waiters of its own cluster and of Options.Clusters have synced
// their shared watch streams (a Waiter that is not a Syncer counts as
// ready); else why not, naming the cluster (the last Start of it failed,
// a namespace's stream has not filled its cache, or its last list or
// watch failed). A health handler's
// readiness check calls it. The clusters of runs come and go, and do not
// count.
func (w *Worker) Ready() error {
	var errs []error
	for _, c := range w.clusters.upFront() {
		var err error
		if p := c.startErr.Load(); p != nil && *p != nil {
			err = fmt.Errorf("Start failed: %w", *p)
		} else if s, ok := c.parts.Waiter.(Syncer); ok {
			err = s.Synced()
		}
		if err != nil && c.name != "" {
			err = fmt.Errorf("cluster %q: %w", c.name, err)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

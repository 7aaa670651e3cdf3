package worker

import (
	"context"
	"fmt"
	"slices"
)

// Start readies the Worker for its first Runs, as a controller syncs its
// caches before it takes work: it reads the cluster's UID, which names
// every run's PID, and starts the shared watch streams of the Worker's
// namespaces (Options.Namespace and Options.Namespaces, with the same
// default as List) and waits until they have synced. Calling it is
// optional, since Run does each on first use, but a long-lived worker
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
	if id, ok := w.opts.Parts.Identity.(UIDReader); ok {
		if _, err := id.UID(ctx); err != nil {
			return fmt.Errorf("worker: start: %w", err)
		}
	}
	s, ok := w.opts.Parts.Waiter.(Syncer)
	if !ok {
		return nil
	}
	nss, err := w.namespaces()
	if err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	if ns := w.opts.Namespace; ns != "" && !slices.Contains(nss, ns) {
		nss = append(slices.Clip(nss), ns)
	}
	if err := s.WaitForSync(ctx, nss...); err != nil {
		return fmt.Errorf("worker: start: %w", err)
	}
	return nil
}

// Ready reports whether the Worker is ready to follow runs at once: nil
// when its Waiter's shared watch streams are synced, or when the Waiter
// is not a Syncer; else why not (a namespace's stream has not filled its
// cache, or its last list or watch failed). A health handler's readiness
// check calls it.
func (w *Worker) Ready() error {
	if s, ok := w.opts.Parts.Waiter.(Syncer); ok {
		return s.Synced()
	}
	return nil
}

// Package retry is kubeworker's one retry policy: every API call on a
// run's path (creating its Job, reading it back, its log, Kill, the
// retention patch, secret writes, the cluster UID read) goes through it.
//
//	p := retry.Policy{} // exponential back-off with jitter, Retry-After honoured, 3 minutes at most
//	job, err := retry.Value(ctx, p, func(ctx context.Context) (*batchv1.Job, error) {
//		return client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
//	})
//
// # What is retried
//
// [Retriable] decides, in one place: timeouts, 429 Too Many Requests (with
// or without Retry-After), 5xx, and dropped, reset or refused
// connections. Any other error, a 4xx such as a validation error,
// Forbidden, NotFound or a conflict, ends the call at once and is
// returned as it is; so does the end of the caller's context.
//
// # How long
//
// The first retry waits about [DefaultInitial], each later one twice the
// last, randomised by ±50% and capped at [DefaultMax], or the server's
// Retry-After when that is longer. No attempt starts later than the
// [Policy.Deadline] ([DefaultDeadline]) after the first transient
// failure, and no wait ends after the context's deadline. A call that
// runs out of time on a transient error returns an error matching
// [ErrGaveUp] that also wraps the last error, so apierrors.Is* predicates
// and errors.As still see the API status.
//
// Note that client-go itself repeats a 429 that carries Retry-After (up
// to 10 times, within one call), so under API Priority and Fairness one
// attempt may last minutes before this policy sees its error; the
// deadline's clock starts then, at the first failure.
//
// # Why backoff/v4
//
// The schedule is cenkalti/backoff/v4's ExponentialBackOff driven by its
// RetryNotify loop, wrapped in a BackOff that adds Retry-After, the
// deadline and an attempt limit: the library's tested loop and timer
// rather than a hand-written one, and the same package the rest of the
// project already uses.
package retry

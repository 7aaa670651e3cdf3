// Package benchsuite measures kubeworker on the local control plane and
// writes the figures to BENCHMARKS.md: submission throughput against a raw
// client-go Create loop, watch connections, API requests and heap per run,
// and how fast a finished run is detected, at each size asked for; and,
// when asked (Options.Clusters), what one Worker's runs cost spread over
// two clusters against all in one: watches, requests and heap per run;
// and, when asked (Options.Kueue), what runs through a Kueue LocalQueue
// cost (a Workload stream beside the Job and pod ones, requests) and how
// soon a Run sees Kueue's admission.
//
// The Worker under measure runs in a child process (the same binary,
// re-run with ChildEnv set), so that its heap holds only the Worker and its
// runs: the parent holds the test cluster's in-process parts and the
// independent watch that times each pod's end. Every figure is a count or
// a ratio taken in one run; times are reported, never asserted.
//
//	go run ./internal/benchsuite/cmd/bench -sizes 1000,5000 -o BENCHMARKS.md
//
// A smoke version (tens of runs) runs in the test suite so the code cannot
// rot; its figures mean nothing.
package benchsuite

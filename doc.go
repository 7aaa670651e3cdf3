// Package kubeworker runs units of work ("runs") as Kubernetes Jobs and
// follows each to a typed result. It is an embeddable library: import it
// into a scheduler, unit-test Job templates with it, or build a worker of
// your own on it. This package holds only documentation; the work is done by
// its subpackages.
//
// # From template to result
//
// A run goes through these steps, each owned by one package:
//
//   - [github.com/kubeworker/kubeworker/manifest]: load a job template,
//     check and apply values, and prepare the Job of one run. Pure; no
//     cluster needed, so templates can be unit-tested (see
//     examples/templatetest).
//   - jobcreate, secrets and clusterid: create the Job exactly once (with
//     retry), keep API keys in Secrets, and name the run by an
//     infrastructure PID "<cluster-uid>:<namespace>:<job-name>".
//   - jobwatch: follow the Job and its pod to a typed outcome, with logs and
//     events, surviving watch expiry and dropped connections.
//   - worker: a thin Worker composing the above behind small interfaces.
//   - Around it: kubeconfig (client config), retry (the one retry policy),
//     agent (a polling loop with health endpoints), install (the manifest
//     that runs a worker process), metrics.
//
// # Examples
//
// examples/render prints the Job a template gives for a run;
// examples/templatetest shows golden-file tests of a team's own template.
package kubeworker

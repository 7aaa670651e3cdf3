package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"
)

// Health endpoint paths served by Agent.HealthHandler, and probed by the
// Deployment that DeploymentManifest writes.
const (
	LivenessPath  = "/healthz"
	ReadinessPath = "/readyz"
)

// Checker is one health check, like controller-runtime's healthz.Checker:
// nil means healthy. It should return promptly; the handler gives each call
// the request's context, cut to HealthCheckTimeout.
type Checker func(ctx context.Context) error

// HealthCheckTimeout bounds each Checker call.
const HealthCheckTimeout = 5 * time.Second

// HealthStatus is the JSON body of the health endpoints.
type HealthStatus struct {
	// Status is "ok" or "failed".
	Status string `json:"status"`
	// Checks gives each check's result by name: "ok" or the error text.
	Checks map[string]string `json:"checks"`
}

// HealthHandler returns an http.Handler serving LivenessPath and
// ReadinessPath with a JSON HealthStatus, status 200 when every check
// passes and 503 otherwise.
//
// /healthz runs one check, "agent": it fails once Serve has returned, or
// when one poll or back-off of the loop has lasted longer than
// Options.StallTimeout (a wedged Source); before Serve starts and
// while the loop waits for a free run slot it passes. /readyz runs the
// "agent" check; the "watch" check, Worker.Ready (it fails while a
// namespace's shared Job or pod stream has not filled its cache, or its
// last list or watch failed); and the checks given here, by name (for example, that the run
// source is reachable), which replace a built-in check of the same name.
// Other paths are 404.
func (a *Agent) HealthHandler(ready map[string]Checker) http.Handler {
	live := map[string]Checker{"agent": a.alive}
	all := map[string]Checker{"agent": a.alive}
	all["watch"] = func(context.Context) error { return a.w.Ready() }
	for name, c := range ready {
		all[name] = c
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+LivenessPath, healthEndpoint(live))
	mux.Handle("GET "+ReadinessPath, healthEndpoint(all))
	return mux
}

// errStopped is the "agent" check's error once Serve has returned.
var errStopped = errors.New("the agent has stopped")

// alive is the Agent's liveness check.
func (a *Agent) alive(context.Context) error {
	switch agentState(a.state.Load()) {
	case agentNew:
		return nil
	case agentStopped:
		return errStopped
	}
	if a.idle.Load() {
		return nil
	}
	since := a.now().Sub(time.Unix(0, a.beat.Load()))
	if since > a.opts.StallTimeout {
		return fmt.Errorf("the polling loop has made no progress for %s (stall timeout %s)", since.Round(time.Second), a.opts.StallTimeout)
	}
	return nil
}

// healthEndpoint runs checks and writes a HealthStatus.
func healthEndpoint(checks map[string]Checker) http.Handler {
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	sort.Strings(names)
	return http.HandlerFunc(func(rw http.ResponseWriter, req *http.Request) {
		st := HealthStatus{Status: "ok", Checks: make(map[string]string, len(names))}
		for _, name := range names {
			ctx, cancel := context.WithTimeout(req.Context(), HealthCheckTimeout)
			err := checks[name](ctx)
			cancel()
			if err != nil {
				st.Status = "failed"
				st.Checks[name] = err.Error()
				continue
			}
			st.Checks[name] = "ok"
		}
		code := http.StatusOK
		if st.Status != "ok" {
			code = http.StatusServiceUnavailable
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Header().Set("Cache-Control", "no-store")
		rw.WriteHeader(code)
		_ = json.NewEncoder(rw).Encode(st)
	})
}

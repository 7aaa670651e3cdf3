package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// schedulerConfig is what kube-scheduler's flags are built from.
type schedulerConfig struct {
	port              int
	kubeconfig        string
	certFile, keyFile string // serving
}

// schedulerArgs returns kube-scheduler's flags: loopback, no leader
// election, the default profile (so a pod that fits no node stays Pending,
// Unschedulable).
func schedulerArgs(c schedulerConfig) []string {
	return []string{
		"--kubeconfig=" + c.kubeconfig,
		"--authentication-kubeconfig=" + c.kubeconfig,
		"--authorization-kubeconfig=" + c.kubeconfig,
		"--bind-address=" + loopback,
		"--secure-port=" + strconv.Itoa(c.port),
		"--tls-cert-file=" + c.certFile,
		"--tls-private-key-file=" + c.keyFile,
		"--leader-elect=false",
		// Client-side rate limits well above the defaults (kcm 20 QPS,
		// the scheduler 50), so a benchmark of thousands of Jobs measures
		// the library, not these limiters.
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	}
}

// startScheduler runs kube-scheduler and waits for its /healthz.
func startScheduler(ctx context.Context, bin, logDir string, client *http.Client, c schedulerConfig, timeout time.Duration) (*process, error) {
	p := newProcess("kube-scheduler", bin, schedulerArgs(c), logDir)
	return launch(ctx, p, timeout, httpCheck(client, fmt.Sprintf("https://%s:%d/healthz", loopback, c.port)))
}

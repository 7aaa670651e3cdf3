package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// controllerManagerConfig is what kube-controller-manager's flags are built
// from.
type controllerManagerConfig struct {
	port              int
	kubeconfig        string
	certFile, keyFile string // serving
	caFile            string // published to namespaces as kube-root-ca.crt
	saSigningKeyFile  string
}

// controllers are the kube-controller-manager controllers a Job needs:
// Jobs themselves, garbage collection (owner references, foreground and
// background deletion), namespaces and their service accounts and tokens,
// TTL after finished, pod GC, ResourceQuota usage (admission enforces a
// quota only once this controller has filled its status), and the
// aggregation that gives the edit, admin and view roles their rules. There
// is no node-lifecycle controller:
// kwok keeps its nodes Ready.
var controllers = []string{
	"job-controller",
	"garbage-collector-controller",
	"namespace-controller",
	"serviceaccount-controller",
	"serviceaccount-token-controller",
	"root-ca-certificate-publisher-controller",
	"ttl-after-finished-controller",
	"pod-garbage-collector-controller",
	"clusterrole-aggregation-controller",
	"resourcequota-controller",
}

// controllerManagerArgs returns kube-controller-manager's flags: loopback,
// no leader election, one service account per controller.
func controllerManagerArgs(c controllerManagerConfig) []string {
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
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + c.saSigningKeyFile,
		"--root-ca-file=" + c.caFile,
		"--controllers=" + strings.Join(controllers, ","),
	}
}

// startControllerManager runs kube-controller-manager and waits for its
// /healthz.
func startControllerManager(ctx context.Context, bin, logDir string, client *http.Client, c controllerManagerConfig, timeout time.Duration) (*process, error) {
	p := newProcess("kube-controller-manager", bin, controllerManagerArgs(c), logDir)
	return launch(ctx, p, timeout, httpCheck(client, fmt.Sprintf("https://%s:%d/healthz", loopback, c.port)))
}

package clustertest

import (
	"fmt"
	"os"
	"strconv"

	"sigs.k8s.io/yaml"
)

// kueueConfig is what Kueue's flags and configuration file are built from.
type kueueConfig struct {
	webhookPort, metricsPort, healthPort int
	visibilityPort                       int
	dir                                  string // Kueue's working directory
	certDir                              string // tls.crt and tls.key, for every server: dir/kueueVisibilityCertDir
	kubeconfig                           string
	configFile                           string
}

// kueueNamespace is Kueue's own namespace. Nothing runs in it; Kueue
// leaves Jobs in it (and in kube-system) alone.
const kueueNamespace = "kueue-system"

// kueueConfiguration returns Kueue's configuration file (its
// config.kueue.x-k8s.io/v1beta2 Configuration API):
//   - Every server binds 127.0.0.1: the webhook server, with a serving
//     certificate from the cluster's CA in certDir (internal certificate
//     management off, so Kueue makes no certificate, Secret or CA
//     injection of its own); metrics and the visibility API server
//     (VisibilityOnDemand, on by default), over TLS with the same
//     certificate; health probes (/healthz, /readyz), plain HTTP.
//   - No leader election: one Kueue per cluster.
//   - Only the batch/job integration, and only Jobs labelled
//     kueue.x-k8s.io/queue-name are managed (manageJobsWithoutQueueName
//     false), so the cluster's other Jobs run as without Kueue.
//   - Client rate limits well above the defaults (20 QPS, burst 30), as
//     for the controller manager.
//   - Every feature gate keeps its default.
func kueueConfiguration(c kueueConfig) ([]byte, error) {
	conf := map[string]any{
		"apiVersion": "config.kueue.x-k8s.io/v1beta2",
		"kind":       "Configuration",
		"namespace":  kueueNamespace,
		"webhook": map[string]any{
			"host":    loopback,
			"port":    c.webhookPort,
			"certDir": c.certDir,
		},
		"metrics":                    map[string]any{"bindAddress": fmt.Sprintf("%s:%d", loopback, c.metricsPort)},
		"health":                     map[string]any{"healthProbeBindAddress": fmt.Sprintf("%s:%d", loopback, c.healthPort)},
		"leaderElection":             map[string]any{"leaderElect": false},
		"internalCertManagement":     map[string]any{"enable": false},
		"manageJobsWithoutQueueName": false,
		"integrations":               map[string]any{"frameworks": []string{"batch/job"}},
		"clientConnection":           map[string]any{"qps": 500, "burst": 1000},
		"visibilityServer":           map[string]any{"bindAddress": loopback},
	}
	data, err := yaml.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("encode Kueue's configuration: %w", err)
	}
	return data, nil
}

// kueueArgs returns the Kueue manager's flags.
func kueueArgs(c kueueConfig) []string {
	return []string{
		"--config=" + c.configFile,
		"--kubeconfig=" + c.kubeconfig,
		"--visibility-server-port=" + strconv.Itoa(c.visibilityPort),
	}
}

// kueueEnv is the manager's environment: the metrics server's certificate
// directory, which the build made settable (see kueueMetricsCertLine).
func kueueEnv(c kueueConfig) []string {
	return append(os.Environ(), kueueMetricsCertEnv+"="+c.certDir)
}

// url returns Kueue's URL for a webhook path.
func (c kueueConfig) url(path string) string {
	return "https://" + loopback + ":" + strconv.Itoa(c.webhookPort) + path
}

// healthURL returns the URL of a health probe endpoint (healthz, readyz).
func (c kueueConfig) healthURL(endpoint string) string {
	return fmt.Sprintf("http://%s:%d/%s", loopback, c.healthPort, endpoint)
}

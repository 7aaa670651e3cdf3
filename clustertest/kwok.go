package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"
)

// kwokConfig is what kwok's flags are built from.
type kwokConfig struct {
	port              int
	kubeconfig        string
	configFile        string // the stages
	certFile, keyFile string // serving, as the nodes' kubelet
	home              string
}

// kwokNodeAnnotation marks the nodes kwok manages; [Cluster.AddNode] sets
// it.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// kwokArgs returns kwok's flags. kwok plays the kubelet of every node
// annotated kwok.x-k8s.io/node=fake, with the stages in the config file.
// Each node advertises 127.0.0.1 and kwok's own server as its kubelet
// port, so the API server fetches pod logs from kwok on loopback, where
// kwok serves them as the Logs objects say. Without --server-address kwok
// would listen on every address, and its default pod CIDR is not loopback.
func kwokArgs(c kwokConfig) []string {
	return []string{
		"--kubeconfig=" + c.kubeconfig,
		"--config=" + c.configFile,
		"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
		"--node-ip=" + loopback,
		"--node-port=" + strconv.Itoa(c.port),
		"--server-address=" + fmt.Sprintf("%s:%d", loopback, c.port),
		"--tls-cert-file=" + c.certFile,
		"--tls-private-key-file=" + c.keyFile,
		"--cidr=127.1.0.0/16",
		"--enable-crds=Logs,ClusterLogs",
		"--node-lease-duration-seconds=0",
	}
}

// startKwok runs kwok and waits for its /healthz. HOME points at the
// cluster's directory, so a user's ~/.kwok/kwok.yaml is not loaded.
func startKwok(ctx context.Context, bin, logDir string, client *http.Client, c kwokConfig, timeout time.Duration) (*process, error) {
	p := newProcess("kwok", bin, kwokArgs(c), logDir)
	p.env = append(os.Environ(), "HOME="+c.home)
	return launch(ctx, p, timeout, httpCheck(client, fmt.Sprintf("https://%s:%d/healthz", loopback, c.port)))
}

package clustertest

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// apiServerConfig is what kube-apiserver's flags are built from.
type apiServerConfig struct {
	port              int
	etcdURL           string
	caFile            string // trusted for client certificates and kwok's kubelet server
	certFile, keyFile string // serving
	saSigningKeyFile  string
	saPublicKeyFile   string
	tokenFile         string
	kubeletCertFile   string // client certificate for kwok's kubelet server
	kubeletKeyFile    string
	proxyCertFile     string // client certificate for aggregated API servers
	proxyKeyFile      string
	egressFile        string // EgressSelectorConfiguration
	watchCache        bool
}

func (c apiServerConfig) url() string {
	return fmt.Sprintf("https://%s:%d", loopback, c.port)
}

// apiServerArgs returns kube-apiserver's flags.
//   - Loopback only, and no endpoint reconciler: nothing ever advertises or
//     dials another address. The service range is an allocation range only.
//   - Client certificates and a static token file authenticate; Node and
//     RBAC authorize, so tests meet real RBAC.
//   - TaintNodesByCondition is off: without a node-lifecycle controller its
//     not-ready taint would never be lifted and nothing would schedule.
//     The default admission plugins stay on, PodSecurity, ResourceQuota,
//     LimitRanger and ServiceAccount among them.
//   - Privileged containers are allowed, as kubeadm and kind allow them, so
//     that Pod Security, not a cluster-wide ban, is what refuses them.
//   - Watches end within 2 s of SIGTERM instead of about 60.
//   - The watch cache is off unless asked for; see [Options.WatchCache].
//   - Pod logs are fetched from kwok's kubelet server on the node's
//     InternalIP (127.0.0.1), verified against the cluster CA.
//   - Everything the API server dials in the cluster (kubelets, webhooks,
//     aggregated API servers) goes through the cluster's egress proxy
//     (see egress), which reaches 127.0.0.1 only.
//   - Aggregated API servers (Kueue's visibility API) are called with the
//     front-proxy-client certificate from the cluster CA, which they
//     trust for the X-Remote-User headers (the requestheader flags).
func apiServerArgs(c apiServerConfig) []string {
	return []string{
		"--etcd-servers=" + c.etcdURL,
		"--bind-address=" + loopback,
		"--advertise-address=" + loopback,
		"--secure-port=" + strconv.Itoa(c.port),
		"--tls-cert-file=" + c.certFile,
		"--tls-private-key-file=" + c.keyFile,
		"--client-ca-file=" + c.caFile,
		"--token-auth-file=" + c.tokenFile,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + c.saPublicKeyFile,
		"--service-account-signing-key-file=" + c.saSigningKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--endpoint-reconciler-type=none",
		"--kubelet-client-certificate=" + c.kubeletCertFile,
		"--kubelet-client-key=" + c.kubeletKeyFile,
		"--kubelet-certificate-authority=" + c.caFile,
		"--kubelet-preferred-address-types=InternalIP",
		"--disable-admission-plugins=TaintNodesByCondition",
		"--allow-privileged=true",
		"--shutdown-watch-termination-grace-period=2s",
		"--egress-selector-config-file=" + c.egressFile,
		"--proxy-client-cert-file=" + c.proxyCertFile,
		"--proxy-client-key-file=" + c.proxyKeyFile,
		"--requestheader-client-ca-file=" + c.caFile,
		"--requestheader-allowed-names=" + frontProxyClient,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-uid-headers=X-Remote-Uid",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--watch-cache=" + strconv.FormatBool(c.watchCache),
	}
}

// frontProxyClient is the name in the certificate that the API server
// presents to aggregated API servers.
const frontProxyClient = "front-proxy-client"

// startAPIServer runs kube-apiserver and waits until /readyz answers 200
// to the admin. A restart calls it again with the same configuration.
func startAPIServer(ctx context.Context, bin, logDir string, admin *http.Client, c apiServerConfig, timeout time.Duration) (*process, error) {
	p := newProcess("kube-apiserver", bin, apiServerArgs(c), logDir)
	return launch(ctx, p, timeout, httpCheck(admin, c.url()+"/readyz"))
}

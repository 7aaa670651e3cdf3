// Package kubeconfig makes the *rest.Config a worker talks to a cluster
// with: from kubeconfig bytes or an object with a context, in-cluster, or
// client-go's default loading rules, with rates that do not throttle a
// busy worker and a transport that counts every request.
//
// A kubeconfig from a run's values is untrusted: load it with
// Options.Untrusted, which refuses whatever would run a command, read
// the worker's files or set a proxy. Fingerprint keys clients by the
// connection a config makes.
package kubeconfig

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
)

// Defaults for Options: client-go's own (5 QPS, burst 10) would make
// a worker that creates many Jobs wait on itself.
const (
	DefaultQPS   = 100
	DefaultBurst = 200
)

// Options say how to reach the cluster. The zero value uses
// in-cluster config when running in a pod, else client-go's default
// loading rules ($KUBECONFIG, then ~/.kube/config).
type Options struct {
	// Kubeconfig is a kubeconfig file's contents. Default: none.
	Kubeconfig []byte
	// KubeconfigMap is a kubeconfig as an object, as a template's
	// cluster_config.config holds it. Default: none.
	KubeconfigMap map[string]any
	// Context names the kubeconfig context. Default: its current context.
	Context string
	// Untrusted says the kubeconfig came from untrusted input, such as a
	// run's values. Load then refuses, with ErrUntrusted, a kubeconfig
	// any of whose users or clusters has exec, auth-provider, tokenFile,
	// client-certificate, client-key, certificate-authority or proxy-url
	// set, and options with no Kubeconfig or KubeconfigMap. Default:
	// false (trusted).
	Untrusted bool
	// QPS and Burst limit the client's request rate. Default DefaultQPS
	// and DefaultBurst.
	QPS   float32
	Burst int
	// UserAgent is sent with every request. Default: "kubeworker".
	UserAgent string
	// Metrics receives every API request made through the config's
	// transport, by verb, resource and status code (see
	// metrics.WrapTransport). Load always counts requests in the run
	// contexts that carry a count, so that Result.Requests is filled.
	// Wrapping its transport with metrics.WrapTransport again adds that
	// Recorder to the same layer, and nothing is counted twice; passing
	// it here is simpler.
	// Default: none (metrics.Discard).
	Metrics metrics.Recorder
}

// For returns the options for a template's cluster_config, or the zero
// options when it has none. They are trusted: set Untrusted when the
// template's values came from a run.
func For(cc *manifest.ClusterConfig) Options {
	if cc == nil {
		return Options{}
	}
	return Options{KubeconfigMap: cc.Config, Context: cc.Context}
}

// Load returns a rest.Config from, in order: Kubeconfig or
// KubeconfigMap with Context; in-cluster config; client-go's default
// loading rules with Context. Only the first that applies is tried, so a
// given kubeconfig that is wrong is an error, never a silent fallback.
//
// A given kubeconfig is checked before client-go sees it, and every
// problem comes back at once, joined with errors.Join: each field
// Untrusted refuses as an *UntrustedError, and each missing or dangling
// piece (no clusters, an unknown context, a context's user or cluster
// that is not there) as an *InvalidError. No error holds a secret.
func Load(opts Options) (*rest.Config, error) {
	if opts.Kubeconfig != nil && opts.KubeconfigMap != nil {
		return nil, errors.New("kubeconfig: give Kubeconfig or KubeconfigMap, not both")
	}
	data := opts.Kubeconfig
	if opts.KubeconfigMap != nil {
		var err error
		if data, err = yaml.Marshal(opts.KubeconfigMap); err != nil {
			return nil, fmt.Errorf("kubeconfig: map: %w", err)
		}
	}
	var cfg *rest.Config
	var err error
	switch {
	case data != nil:
		if cfg, err = fromKubeconfig(data, opts); err != nil {
			return nil, err
		}
	case opts.Untrusted:
		return nil, errNoKubeconfig
	default:
		if cfg, err = rest.InClusterConfig(); err == nil {
			break
		}
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubeconfig: client config: %w", err)
		}
	}
	cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	if cfg.QPS == 0 {
		cfg.QPS = DefaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	cfg.UserAgent = opts.UserAgent
	if cfg.UserAgent == "" {
		cfg.UserAgent = "kubeworker"
	}
	cfg.Wrap(metrics.WrapTransport(opts.Metrics))
	return cfg, nil
}

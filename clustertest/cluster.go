package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Cluster is a running local control plane: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok, all on 127.0.0.1, plus
// a fault [Proxy] in front of the API server and one Ready fake node. Its
// methods are safe for concurrent use.
type Cluster struct {
	opts   Options
	bins   Binaries
	files  *files
	api    apiServerConfig
	etcd   etcdConfig
	config *rest.Config
	client kubernetes.Interface
	dyn    dynamic.Interface

	adminHTTP *http.Client
	health    *http.Client // trusts the cluster CA; checks components' /healthz
	kcm       controllerManagerConfig
	egress    *egress
	proxy     *Proxy
	podLogs   *podLogs

	mu                sync.Mutex // guards procs, apiserver and controllerManager, and serializes restarts
	procs             []*process // every process started, in start order
	apiserver         *process
	controllerManager *process
	stopped           bool

	kueueMu sync.Mutex // serializes StartKueue and StopKueue; guards kueue
	kueue   *kueueRun  // nil until the first StartKueue
}

// Start builds the binaries if needed (see [Provision]) and starts a
// cluster on free loopback ports, in a new directory under
// [Options.TempDir]. It returns once the API server is ready, every
// component is healthy and the default node is Ready. On failure it stops
// whatever it started, and the error holds the last lines of the failing
// component's log. Several clusters can run at once, in one process or
// many.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bins, err := Provision(ctx, opts)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, opts, bins)
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 {
			return c, err
		}
	}
}

func start(ctx context.Context, opts Options, bins Binaries) (_ *Cluster, err error) {
	p := newProgress(opts.progress())
	dir, err := os.MkdirTemp(opts.TempDir, "kubeworker-testcluster-")
	if err != nil {
		return nil, fmt.Errorf("make cluster directory: %w", err)
	}
	c := &Cluster{opts: opts, bins: bins}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Stop())
			if c.files == nil {
				os.RemoveAll(dir)
			}
		}
	}()
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	c.etcd = etcdConfig{dataDir: filepath.Join(dir, "etcd"), clientPort: ports[0], peerPort: ports[1]}
	apiURL := fmt.Sprintf("https://%s:%d", loopback, ports[2])
	if c.files, err = writeFiles(dir, apiURL); err != nil {
		return nil, err
	}
	c.api = c.apiServerConfig(ports[2])
	if err := c.startEgress(); err != nil {
		return nil, err
	}
	c.config = c.files.adminConfig(apiURL)
	if c.adminHTTP, err = tlsClient(c.files.ca.certPEM, &c.files.adminCert); err != nil {
		return nil, err
	}
	if err := p.step("start etcd and kube-apiserver", func() error { return c.startStorage(ctx) }); err != nil {
		return nil, err
	}
	if err := p.step("start controllers, scheduler and kwok", func() error { return c.startComponents(ctx, ports[3], ports[4], ports[5]) }); err != nil {
		return nil, err
	}
	if c.proxy, err = startProxy(c.files.ca, c.api.url()); err != nil {
		return nil, err
	}
	if c.podLogs, err = startPodLogs(ctx, c.files.path("pods"), c.client, c.dyn, opts.logger()); err != nil {
		return nil, err
	}
	err = p.step("add a Ready node", func() error {
		_, err := c.AddNode(ctx, NodeOptions{Name: DefaultNodeName})
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Cluster) apiServerConfig(port int) apiServerConfig {
	f := c.files
	return apiServerConfig{
		port:             port,
		etcdURL:          c.etcd.clientURL(),
		caFile:           f.caFile,
		certFile:         f.apiCert,
		keyFile:          f.apiKey,
		saSigningKeyFile: f.saKey,
		saPublicKeyFile:  f.saPub,
		tokenFile:        f.tokenFile,
		kubeletCertFile:  f.kubeletClientCert,
		kubeletKeyFile:   f.kubeletClientKey,
		proxyCertFile:    f.proxyClientCert,
		proxyKeyFile:     f.proxyClientKey,
		egressFile:       f.path("egress.yaml"),
		watchCache:       c.opts.WatchCache,
	}
}

// startEgress starts the API server's egress proxy and writes its
// configuration file.
func (c *Cluster) startEgress() error {
	e, err := startEgress(c.files.dir)
	if err != nil {
		return err
	}
	c.egress = e
	conf, err := e.config()
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.api.egressFile, conf, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", c.api.egressFile, err)
	}
	return nil
}

// startStorage starts etcd, then the API server, then installs kwok's CRDs.
func (c *Cluster) startStorage(ctx context.Context) error {
	timeout := c.opts.startTimeout()
	etcd, err := startEtcd(ctx, c.bins.Etcd, c.files.dir, c.etcd, timeout)
	if err != nil {
		return err
	}
	c.track(etcd)
	api, err := startAPIServer(ctx, c.bins.KubeAPIServer, c.files.dir, c.adminHTTP, c.api, timeout)
	if err != nil {
		return err
	}
	c.track(api)
	c.mu.Lock()
	c.apiserver = api
	c.mu.Unlock()
	if c.client, err = kubernetes.NewForConfig(c.config); err != nil {
		return fmt.Errorf("make client: %w", err)
	}
	if c.dyn, err = dynamic.NewForConfig(c.config); err != nil {
		return fmt.Errorf("make dynamic client: %w", err)
	}
	return installCRDs(ctx, c.dyn)
}

// startComponents starts the controller manager, the scheduler and kwok
// side by side and waits until all are healthy.
func (c *Cluster) startComponents(ctx context.Context, kcmPort, schedPort, kwokPort int) error {
	f, timeout := c.files, c.opts.startTimeout()
	health, err := tlsClient(f.ca.certPEM, nil)
	if err != nil {
		return err
	}
	c.health = health
	c.kcm = controllerManagerConfig{
		port: kcmPort, kubeconfig: f.kcmKubeconfig, certFile: f.kcmCert, keyFile: f.kcmKey,
		caFile: f.caFile, saSigningKeyFile: f.saKey,
	}
	starts := []func() (*process, error){
		func() (*process, error) {
			p, err := startControllerManager(ctx, c.bins.KubeControllerManager, f.dir, health, c.kcm, timeout)
			if p != nil {
				c.mu.Lock()
				c.controllerManager = p
				c.mu.Unlock()
			}
			return p, err
		},
		func() (*process, error) {
			return startScheduler(ctx, c.bins.KubeScheduler, f.dir, health, schedulerConfig{
				port: schedPort, kubeconfig: f.schedKubeconfig, certFile: f.schedCert, keyFile: f.schedKey,
			}, timeout)
		},
		func() (*process, error) {
			return startKwok(ctx, c.bins.Kwok, f.dir, health, kwokConfig{
				port: kwokPort, kubeconfig: f.kwokKubeconfig, configFile: f.stagesFile,
				certFile: f.kwokCert, keyFile: f.kwokKey, home: f.dir,
			}, timeout)
		},
	}
	errs := make([]error, len(starts))
	var wg sync.WaitGroup
	for i, start := range starts {
		wg.Go(func() {
			p, err := start()
			if p != nil {
				c.track(p)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (c *Cluster) track(p *process) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs = append(c.procs, p)
}

// Stop stops the pod-log watcher, the fault proxy and the egress proxy, kills every process the
// cluster started (each with its process group, including API servers
// replaced by restarts), waits for them to exit and removes the cluster's
// directory. It returns every error joined. Calling it again does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	if c.podLogs != nil {
		c.podLogs.stop()
	}
	if c.proxy != nil {
		errs = append(errs, c.proxy.close())
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		errs = append(errs, c.procs[i].kill())
	}
	if c.egress != nil {
		errs = append(errs, c.egress.close())
	}
	if c.files != nil {
		if err := os.RemoveAll(c.files.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Config returns a rest.Config for the cluster's admin (group
// system:masters), authenticated by client certificate, talking to the API
// server directly. Each call returns a new copy.
func (c *Cluster) Config() *rest.Config {
	return rest.CopyConfig(c.config)
}

// Kubeconfig returns the path of a kubeconfig file for the admin, for
// kubectl and for programs that load one.
func (c *Cluster) Kubeconfig() string {
	return c.files.adminKubeconfig
}

// Proxy returns the fault proxy in front of the API server.
func (c *Cluster) Proxy() *Proxy {
	return c.proxy
}

// ProxyConfig returns a rest.Config for the admin (by bearer token) that
// goes through [Cluster.Proxy].
func (c *Cluster) ProxyConfig() *rest.Config {
	return c.proxy.Config(c.files.adminToken)
}

// Dir returns the cluster's working directory, which holds each
// component's log (etcd.log, kube-apiserver.log, …) while the cluster runs.
func (c *Cluster) Dir() string {
	return c.files.dir
}

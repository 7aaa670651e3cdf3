package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/util/retry"
)

// kueueRun is the cluster's Kueue: set up once by the first StartKueue,
// then run, stopped and run again on the same ports and files.
type kueueRun struct {
	cfg      kueueConfig
	proc     *process // the running or last manager; nil before its first start
	crds     bool     // its CRDs are established, and its namespace made
	webhooks bool     // its webhook configurations are registered
}

// running reports whether Kueue's manager runs.
func (k *kueueRun) running() bool {
	return k != nil && k.proc != nil && !k.proc.exited()
}

// StartKueue starts Kueue v0.17.0 in the cluster, and returns once it
// admits work: its CRDs are established, its manager is ready (/readyz
// and /healthz), the API server reaches its webhooks, and its visibility
// API is available (see the package doc). The first call
// builds Kueue if the cache lacks it (see [Options.Kueue]; about 5.5
// minutes cold), installs its CRDs and registers its webhooks; later
// calls return at once while Kueue runs, and start it again after
// [Cluster.StopKueue] or a crash. It is safe for concurrent use; [Cluster.Stop]
// stops Kueue with the rest. Its log is kueue.log in [Cluster.Dir].
//
// Kueue manages only Jobs labelled kueue.x-k8s.io/queue-name (see the
// package doc's Kueue section); the cluster's other Jobs run as before.
// Warm, the first call takes about 3 seconds on two cores (up to 7 when
// they are busy), a restart after StopKueue about 0.3.
func (c *Cluster) StartKueue(ctx context.Context) error {
	c.kueueMu.Lock()
	defer c.kueueMu.Unlock()
	if c.kueue.running() {
		return nil
	}
	if err := c.errIfStopped(); err != nil {
		return fmt.Errorf("start Kueue: %w", err)
	}
	p := newProgress(c.opts.progress())
	for attempt := 1; ; attempt++ {
		err := c.startKueue(ctx, p)
		if err == nil {
			return nil
		}
		// A port picked free was taken before Kueue bound it (another
		// cluster starting): on a first start, nothing points at the
		// ports yet but the CRDs' conversion webhooks, which are
		// installed again; pick new ones.
		if !errors.Is(err, errPortTaken) || c.kueue == nil || c.kueue.webhooks || attempt == 3 {
			return fmt.Errorf("start Kueue: %w", err)
		}
		c.kueue = nil
	}
}

// startKueue is one attempt of StartKueue; c.kueueMu is held.
func (c *Cluster) startKueue(ctx context.Context, p *progress) error {
	if c.kueue == nil {
		k, err := c.setUpKueue(ctx)
		if err != nil {
			return err
		}
		c.kueue = k
	}
	k := c.kueue
	if !k.crds {
		if err := p.step("install Kueue's CRDs", func() error { return c.installKueueCRDs(ctx, k) }); err != nil {
			return err
		}
	}
	err := p.step("start Kueue", func() error {
		proc := newProcess("kueue", c.bins.Kueue, kueueArgs(k.cfg), c.files.dir)
		proc.env, proc.dir = kueueEnv(k.cfg), k.cfg.dir
		health := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		ready, healthy := httpCheck(health, k.cfg.healthURL("readyz")), httpCheck(health, k.cfg.healthURL("healthz"))
		proc, err := launch(ctx, proc, c.opts.startTimeout(), func(ctx context.Context) error {
			return errors.Join(ready(ctx), healthy(ctx))
		})
		if err != nil {
			return err
		}
		k.proc = proc
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.stopped {
			return errors.Join(errors.New("the cluster was stopped"), proc.kill())
		}
		c.procs = append(c.procs, proc)
		return nil
	})
	if err != nil {
		return err
	}
	if err := p.step("register Kueue's webhooks", func() error { return c.registerKueueWebhooks(ctx, k) }); err != nil {
		return errors.Join(err, k.proc.kill())
	}
	if err := p.step("register Kueue's visibility API", func() error { return c.registerKueueVisibility(ctx, k) }); err != nil {
		return errors.Join(err, k.proc.kill())
	}
	return nil
}

// StopKueue kills Kueue's manager and waits for it to exit; it does
// nothing if Kueue does not run. Its CRDs, objects and webhook
// configurations stay: while it is stopped, the API server refuses what
// needs its webhooks (creating or updating a Job labelled
// kueue.x-k8s.io/queue-name, or a Kueue object) with "failed calling
// webhook", since each has failurePolicy Fail, and nothing admits or
// evicts Workloads. The APIServices of its visibility API are deleted
// first, so that an unreachable aggregated API never stalls the cluster's
// discovery (namespace deletion, garbage collection). [Cluster.StartKueue]
// starts it again on the same ports and registers them again.
func (c *Cluster) StopKueue() error {
	c.kueueMu.Lock()
	defer c.kueueMu.Unlock()
	if !c.kueue.running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return errors.Join(c.unregisterKueueVisibility(ctx), c.kueue.proc.kill())
}

func (c *Cluster) errIfStopped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("the cluster is stopped")
	}
	return nil
}

// setUpKueue builds Kueue if needed, picks its ports, and writes its
// certificate, kubeconfig and configuration into the cluster's directory.
func (c *Cluster) setUpKueue(ctx context.Context) (*kueueRun, error) {
	if c.bins.Kueue == "" {
		opts := c.opts
		opts.Kueue = true
		bins, err := Provision(ctx, opts)
		if err != nil {
			return nil, err
		}
		c.bins.Kueue, c.bins.KueueManifests = bins.Kueue, bins.KueueManifests
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	dir := c.files.path("kueue")
	k := &kueueRun{cfg: kueueConfig{
		webhookPort: ports[0], metricsPort: ports[1], healthPort: ports[2], visibilityPort: ports[3],
		dir:        dir,
		certDir:    filepath.Join(dir, kueueVisibilityCertDir),
		kubeconfig: filepath.Join(dir, "kueue.kubeconfig"),
		configFile: filepath.Join(dir, "config.yaml"),
	}}
	if err := c.writeKueueFiles(k.cfg); err != nil {
		return nil, err
	}
	return k, nil
}

// installKueueCRDs creates Kueue's CRDs, with their conversion webhooks
// pointed at k, and its namespace.
func (c *Cluster) installKueueCRDs(ctx context.Context, k *kueueRun) error {
	crds, err := kueueCRDs(c.bins.KueueManifests, k.cfg, c.files.ca.certPEM)
	if err != nil {
		return err
	}
	if err := applyCRDs(ctx, c.dyn, crds); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kueueNamespace}}
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", kueueNamespace, err)
	}
	k.crds = true
	return nil
}

// applyCRDs creates crds, or updates the spec of those that exist (their
// conversion webhook's port may have changed), and waits until each is
// established.
func applyCRDs(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured) error {
	client := dyn.Resource(crdResource)
	for _, crd := range crds {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			got, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil // createCRDs makes it
			}
			if err != nil {
				return err
			}
			got.Object["spec"] = crd.Object["spec"]
			_, err = client.Update(ctx, got, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("update CRD %s: %w", crd.GetName(), err)
		}
	}
	return createCRDs(ctx, dyn, crds)
}

// writeKueueFiles writes Kueue's serving certificate (for 127.0.0.1, from
// the cluster CA), its kubeconfig (a system:masters client certificate)
// and its configuration file.
func (c *Cluster) writeKueueFiles(cfg kueueConfig) error {
	if err := os.MkdirAll(cfg.certDir, 0o700); err != nil {
		return fmt.Errorf("make Kueue's directory: %w", err)
	}
	serving, err := c.files.ca.serving("kueue", loopback, "localhost", kueueVisibilityHost)
	if err != nil {
		return err
	}
	client, err := c.files.ca.client("kueue", "system:masters")
	if err != nil {
		return err
	}
	conf, err := kueueConfiguration(cfg)
	if err != nil {
		return err
	}
	for path, data := range map[string][]byte{
		filepath.Join(cfg.certDir, "tls.crt"): serving.certPEM,
		filepath.Join(cfg.certDir, "tls.key"): serving.keyPEM,
		cfg.configFile:                        conf,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	return writeKubeconfig(cfg.kubeconfig, "testcluster", certConfig(c.api.url(), c.files.ca.certPEM, client))
}

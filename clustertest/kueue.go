package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// kueueRun is the cluster's Kueue: set up once by the first StartKueue,
// then run, stopped and run again on the same ports and files.
type kueueRun struct {
	cfg      kueueConfig
	proc     *process // the running or last manager; nil before its first start
	webhooks bool     // its webhook configurations are registered
}

// running reports whether Kueue's manager runs.
func (k *kueueRun) running() bool {
	return k != nil && k.proc != nil && !k.proc.exited()
}

// StartKueue starts Kueue v0.17.0 in the cluster, and returns once it
// admits work: its CRDs are established, its manager is ready (/readyz
// and /healthz) and the API server reaches its webhooks. The first call
// builds Kueue if the cache lacks it (see [Options.Kueue]; about 5.5
// minutes cold), installs its CRDs and registers its webhooks; later
// calls return at once while Kueue runs, and start it again after
// [Cluster.StopKueue] or a crash. It is safe for concurrent use; [Cluster.Stop]
// stops Kueue with the rest. Its log is kueue.log in [Cluster.Dir].
//
// Kueue manages only Jobs labelled kueue.x-k8s.io/queue-name (see the
// package doc's Kueue section); the cluster's other Jobs run as before.
// Warm, the first call takes 4 to 7 seconds (on two busy cores), a
// restart after StopKueue about 0.3.
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
	if c.kueue == nil {
		k, err := c.setUpKueue(ctx, p)
		if err != nil {
			return fmt.Errorf("start Kueue: %w", err)
		}
		c.kueue = k
	}
	k := c.kueue
	err := p.step("start Kueue", func() error {
		proc := newProcess("kueue", c.bins.Kueue, kueueArgs(k.cfg), c.files.dir)
		proc.env = kueueEnv(k.cfg)
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
		return fmt.Errorf("start Kueue: %w", err)
	}
	if err := p.step("register Kueue's webhooks", func() error { return c.registerKueueWebhooks(ctx, k) }); err != nil {
		return fmt.Errorf("start Kueue: %w", errors.Join(err, k.proc.kill()))
	}
	return nil
}

// StopKueue kills Kueue's manager and waits for it to exit; it does
// nothing if Kueue does not run. Its CRDs, objects and webhook
// configurations stay: while it is stopped, the API server refuses what
// needs its webhooks (creating or updating a Job labelled
// kueue.x-k8s.io/queue-name, or a Kueue object) with "failed calling
// webhook", since each has failurePolicy Fail, and nothing admits or
// evicts Workloads. [Cluster.StartKueue] starts it again on the same ports.
func (c *Cluster) StopKueue() error {
	c.kueueMu.Lock()
	defer c.kueueMu.Unlock()
	if !c.kueue.running() {
		return nil
	}
	return c.kueue.proc.kill()
}

func (c *Cluster) errIfStopped() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("the cluster is stopped")
	}
	return nil
}

// setUpKueue builds Kueue if needed, picks its ports, writes its
// certificate, kubeconfig and configuration into the cluster's directory,
// and installs its CRDs.
func (c *Cluster) setUpKueue(ctx context.Context, p *progress) (*kueueRun, error) {
	if c.bins.Kueue == "" {
		opts := c.opts
		opts.Kueue = true
		bins, err := Provision(ctx, opts)
		if err != nil {
			return nil, err
		}
		c.bins.Kueue, c.bins.KueueManifests = bins.Kueue, bins.KueueManifests
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	dir := c.files.path("kueue")
	k := &kueueRun{cfg: kueueConfig{
		webhookPort: ports[0], metricsPort: ports[1], healthPort: ports[2],
		certDir:    filepath.Join(dir, "certs"),
		kubeconfig: filepath.Join(dir, "kueue.kubeconfig"),
		configFile: filepath.Join(dir, "config.yaml"),
	}}
	if err := c.writeKueueFiles(k.cfg); err != nil {
		return nil, err
	}
	err = p.step("install Kueue's CRDs", func() error {
		crds, err := kueueCRDs(c.bins.KueueManifests, k.cfg, c.files.ca.certPEM)
		if err != nil {
			return err
		}
		return createCRDs(ctx, c.dyn, crds)
	})
	if err != nil {
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kueueNamespace}}
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create namespace %s: %w", kueueNamespace, err)
	}
	return k, nil
}

// writeKueueFiles writes Kueue's serving certificate (for 127.0.0.1, from
// the cluster CA), its kubeconfig (a system:masters client certificate)
// and its configuration file.
func (c *Cluster) writeKueueFiles(cfg kueueConfig) error {
	if err := os.MkdirAll(cfg.certDir, 0o700); err != nil {
		return fmt.Errorf("make Kueue's directory: %w", err)
	}
	serving, err := c.files.ca.serving("kueue", loopback, "localhost")
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

// registerKueueWebhooks registers Kueue's webhooks once, then waits until
// the API server calls them: until a server-side dry run of a Job with an
// invalid queue name is denied by Kueue's Job validating webhook (after
// its mutating one). Until then, the API server either has not seen the
// configurations yet, or cannot reach Kueue.
func (c *Cluster) registerKueueWebhooks(ctx context.Context, k *kueueRun) error {
	if !k.webhooks {
		manifests, err := os.ReadFile(filepath.Join(c.bins.KueueManifests, "webhook", "manifests.yaml"))
		if err != nil {
			return fmt.Errorf("read Kueue's webhook manifests: %w", err)
		}
		mutating, validating, err := kueueWebhooks(manifests, k.cfg, c.files.ca.certPEM)
		if err != nil {
			return err
		}
		adm := c.client.AdmissionregistrationV1()
		if _, err := adm.MutatingWebhookConfigurations().Create(ctx, mutating, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", mutating.Name, err)
		}
		if _, err := adm.ValidatingWebhookConfigurations().Create(ctx, validating, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", validating.Name, err)
		}
		k.webhooks = true
	}
	probe := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "clustertest-kueue-probe-",
			Labels:       map[string]string{kueueQueueLabel: "not_a_queue_name"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "probe", Image: "probe"}},
		}}},
	}
	const denied = `admission webhook "vjob.kb.io" denied the request`
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, c.opts.startTimeout(), true, func(ctx context.Context) (bool, error) {
		_, last = c.client.BatchV1().Jobs(metav1.NamespaceDefault).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), denied), nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not call Kueue's webhooks: %w (last: %v)", err, last)
	}
	return nil
}

// kueueCRDs reads Kueue's CRDs from its manifests directory and sets the
// conversion webhook of those its kustomization patches (crd/patches).
func kueueCRDs(dir string, cfg kueueConfig, caPEM []byte) ([]*unstructured.Unstructured, error) {
	var kust struct {
		Resources []string `json:"resources"`
		Patches   []struct {
			Path string `json:"path"`
		} `json:"patches"`
	}
	if err := readYAML(filepath.Join(dir, "crd", "kustomization.yaml"), &kust); err != nil {
		return nil, err
	}
	patches := map[string]kueueConversion{}
	for _, p := range kust.Patches {
		var conv kueueConversion
		if err := readYAML(filepath.Join(dir, "crd", p.Path), &conv); err != nil {
			return nil, err
		}
		patches[conv.Metadata.Name] = conv
	}
	var crds []*unstructured.Unstructured
	for _, res := range kust.Resources {
		crd := &unstructured.Unstructured{}
		if err := readYAML(filepath.Join(dir, "crd", res), &crd.Object); err != nil {
			return nil, err
		}
		if patch, ok := patches[crd.GetName()]; ok {
			if err := kueueCRDConversion(crd, patch, cfg, caPEM); err != nil {
				return nil, err
			}
			delete(patches, crd.GetName())
		}
		crds = append(crds, crd)
	}
	if len(crds) == 0 || len(patches) > 0 {
		return nil, fmt.Errorf("kueue's CRD kustomization in %s: %d CRDs, conversion patches for missing CRDs %v", dir, len(crds), patches)
	}
	return crds, nil
}

func readYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

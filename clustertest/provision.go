package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Versions of the control plane. The Kubernetes staging modules are at
// stagingVersion, the k8s.io/* release of kubernetesVersion.
const (
	kubernetesVersion = "v1.37.2"
	stagingVersion    = "v0.37.2"
	etcdVersion       = "v3.6.16"
	kwokVersion       = "v0.8.0"
	kueueVersion      = "v0.17.0"
	kueueBuildTag     = "-b2" // names the build's own changes: bump it when buildKueue changes
)

// Binaries holds the paths of the control plane's programs.
type Binaries struct {
	// Etcd is etcd v3.6.16.
	Etcd string
	// Etcdctl is etcd's command-line client, for debugging by hand.
	Etcdctl string
	// KubeAPIServer is kube-apiserver v1.37.2.
	KubeAPIServer string
	// KubeControllerManager is kube-controller-manager.
	KubeControllerManager string
	// KubeScheduler is kube-scheduler.
	KubeScheduler string
	// Kwok is kwok, which plays the kubelet of fake nodes.
	Kwok string
	// Kueue is Kueue's controller manager v0.17.0, for
	// [Cluster.StartKueue]. Empty unless it has been built: [Provision]
	// builds it only when [Options.Kueue] is set.
	Kueue string
	// KueueManifests is the directory of Kueue's manifests of the same
	// version, taken from its module: its CRDs (crd/bases), the CRD
	// conversion patches (crd/patches) and its webhook configurations
	// (webhook/manifests.yaml). Empty exactly when Kueue is.
	KueueManifests string
}

func binariesIn(dir string) Binaries {
	return Binaries{
		Etcd:                  filepath.Join(dir, "etcd"),
		Etcdctl:               filepath.Join(dir, "etcdctl"),
		KubeAPIServer:         filepath.Join(dir, "kube-apiserver"),
		KubeControllerManager: filepath.Join(dir, "kube-controller-manager"),
		KubeScheduler:         filepath.Join(dir, "kube-scheduler"),
		Kwok:                  filepath.Join(dir, "kwok"),
		Kueue:                 filepath.Join(dir, "kueue-"+kueueVersion+kueueBuildTag),
		KueueManifests:        filepath.Join(dir, "kueue-"+kueueVersion+"-manifests"),
	}
}

// Provision returns the control plane's binaries, building those missing
// from the cache directory first (see [Options.CacheDir]). It uses only the
// go command and the module proxy. A cold build takes about 15 minutes on
// two idle cores (38 on a busy shared one), relinking with a warm Go build
// cache about 1.5 minutes; each step is printed to [Options.Progress].
// Later calls, from any process, find the binaries at once. Concurrent
// callers in several processes wait for one build. [Start] calls it; run it
// ahead of go test (kubeworker cluster provision) so that no test binary
// pays for the build within its timeout. A failure names the cache
// directory and the step (or the missing go command) that failed.
//
// Kueue is built only with [Options.Kueue] (about 5.5 more minutes cold);
// without it, [Binaries.Kueue] is set only if an earlier call built it.
func Provision(ctx context.Context, opts Options) (Binaries, error) {
	dir, err := opts.binDir()
	if err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("make cache directory: %w", err)
	}
	p := newProgress(opts.progress())
	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"), p)
	if err != nil {
		return Binaries{}, err
	}
	bins := binariesIn(dir)
	if err = buildMissing(ctx, bins, opts.Kueue, p); err != nil {
		err = fmt.Errorf("build the control plane into the cache directory %s: %w", dir, err)
	}
	if !allExist([]string{bins.Kueue, bins.KueueManifests}) {
		bins.Kueue, bins.KueueManifests = "", ""
	}
	return bins, errors.Join(err, unlock())
}

// buildGroup is binaries built together, by one function.
type buildGroup struct {
	outputs []string
	build   func(context.Context, *goRunner, Binaries) error
}

// buildMissing builds each group of binaries of which one is missing;
// Kueue's only if kueue is set.
func buildMissing(ctx context.Context, bins Binaries, kueue bool, p *progress) error {
	groups := []buildGroup{
		{[]string{bins.Etcd, bins.Etcdctl}, buildEtcd},
		{[]string{bins.Kwok}, buildKwok},
		{[]string{bins.KubeAPIServer, bins.KubeControllerManager, bins.KubeScheduler}, buildKubernetes},
	}
	if kueue {
		groups = append(groups, buildGroup{[]string{bins.KueueManifests, bins.Kueue}, buildKueue})
	}
	for _, g := range groups {
		if allExist(g.outputs) {
			continue
		}
		r, err := newGoRunner(p)
		if err != nil {
			return err
		}
		if err := g.build(ctx, r, bins); err != nil {
			return err
		}
	}
	return nil
}

func allExist(paths []string) bool {
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			return false
		}
	}
	return true
}

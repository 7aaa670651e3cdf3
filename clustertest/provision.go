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
}

func binariesIn(dir string) Binaries {
	return Binaries{
		Etcd:                  filepath.Join(dir, "etcd"),
		Etcdctl:               filepath.Join(dir, "etcdctl"),
		KubeAPIServer:         filepath.Join(dir, "kube-apiserver"),
		KubeControllerManager: filepath.Join(dir, "kube-controller-manager"),
		KubeScheduler:         filepath.Join(dir, "kube-scheduler"),
		Kwok:                  filepath.Join(dir, "kwok"),
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
	if err = buildMissing(ctx, bins, p); err != nil {
		err = fmt.Errorf("build the control plane into the cache directory %s: %w", dir, err)
	}
	return bins, errors.Join(err, unlock())
}

// buildMissing builds each group of binaries of which one is missing.
func buildMissing(ctx context.Context, bins Binaries, p *progress) error {
	groups := []struct {
		outputs []string
		build   func(context.Context, *goRunner, Binaries) error
	}{
		{[]string{bins.Etcd, bins.Etcdctl}, buildEtcd},
		{[]string{bins.Kwok}, buildKwok},
		{[]string{bins.KubeAPIServer, bins.KubeControllerManager, bins.KubeScheduler}, buildKubernetes},
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

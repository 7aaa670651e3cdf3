package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// kueueModule is Kueue's module; kubeworker itself never imports it. Its
// manager is built in a throw-away module, as kwok is.
const kueueModule = "sigs.k8s.io/kueue"

// kueueManifestDirs are the parts of Kueue's module copied next to its
// binary, from config/components into [Binaries.KueueManifests].
var kueueManifestDirs = []string{"crd/bases", "crd/patches", "crd/kustomization.yaml", "webhook/manifests.yaml"}

// kueueMetricsCertLine is where Kueue's main reads the metrics server's
// certificate when its internal certificate management is off: a fixed
// path under /etc. The build points it at $KUEUE_METRICS_CERT_DIR instead
// (see writeKueueMain); it is the only change made to Kueue's source.
const (
	kueueMetricsCertLine = `metricsCertPath := "/etc/kueue/metrics/certs"`
	kueueMetricsCertEnv  = "KUEUE_METRICS_CERT_DIR"
)

// kueueVisibilityCertDir is where Kueue's visibility API server reads
// tls.crt and tls.key: fixed at /visibility in Kueue, set at link time to
// this path, relative to the manager's working directory.
const kueueVisibilityCertDir = "certs"

// buildKueue copies Kueue's manifests out of its module, then builds its
// manager with the one-line change of writeKueueMain, the version stamped,
// as its release images are, and the visibility server's certificate
// directory set (kueueVisibilityCertDir). The go command refuses to overlay
// a file in the module cache, so the manager's main package (one file)
// is copied into the throw-away module; every other package is Kueue's
// own, from the module cache.
func buildKueue(ctx context.Context, r *goRunner, bins Binaries) error {
	dir, cleanup, err := r.tempModule(ctx, "kueue")
	if err != nil {
		return err
	}
	defer cleanup()
	env := moduleEnv()
	mod := kueueModule + "@" + kueueVersion
	out, err := r.run(ctx, "download "+mod, dir, env, "mod", "download", "-json", mod)
	if err != nil {
		return err
	}
	var download struct{ Dir string }
	if err := json.Unmarshal(out, &download); err != nil || download.Dir == "" {
		return fmt.Errorf("read go mod download output for %s: %v", mod, err)
	}
	if err := copyKueueManifests(download.Dir, bins.KueueManifests); err != nil {
		return err
	}
	pkg := kueueModule + "/cmd/kueue"
	if _, err := r.run(ctx, "go get "+pkg+"@"+kueueVersion, dir, env, "get", pkg+"@"+kueueVersion); err != nil {
		return err
	}
	if err := writeKueueMain(download.Dir, filepath.Join(dir, "kueue")); err != nil {
		return err
	}
	ldflags := "-X " + kueueModule + "/pkg/version.GitVersion=" + kueueVersion +
		" -X " + kueueModule + "/pkg/visibility.certDir=" + kueueVisibilityCertDir
	return r.buildTo(ctx, dir, bins.Kueue, "./kueue", "-ldflags", ldflags)
}

// writeKueueMain writes into dir a copy of Kueue's cmd/kueue/main.go whose
// metrics certificate directory is $KUEUE_METRICS_CERT_DIR when that is
// set. It fails if the line to change is not there exactly once.
func writeKueueMain(modDir, dir string) error {
	src, err := os.ReadFile(filepath.Join(modDir, "cmd", "kueue", "main.go"))
	if err != nil {
		return fmt.Errorf("read Kueue's main: %w", err)
	}
	if n := strings.Count(string(src), kueueMetricsCertLine); n != 1 {
		return fmt.Errorf("kueue's main.go has %d lines %s, want 1: cannot move its metrics certificate", n, kueueMetricsCertLine)
	}
	patched := strings.Replace(string(src), kueueMetricsCertLine, kueueMetricsCertLine+
		fmt.Sprintf("\n\t\tif d := os.Getenv(%q); d != \"\" {\n\t\t\tmetricsCertPath = d\n\t\t}", kueueMetricsCertEnv), 1)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("make Kueue's main directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(patched), 0o644); err != nil {
		return fmt.Errorf("write Kueue's main: %w", err)
	}
	return nil
}

// copyKueueManifests copies kueueManifestDirs from Kueue's module
// directory into out, atomically: a half-copied directory is never taken
// for a whole one.
func copyKueueManifests(modDir, out string) error {
	if _, err := os.Stat(out); err == nil {
		return nil // copied by an earlier build whose binary went missing
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+"-")
	if err != nil {
		return fmt.Errorf("make manifests directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	src := filepath.Join(modDir, "config", "components")
	for _, part := range kueueManifestDirs {
		err := filepath.WalkDir(filepath.Join(src, part), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			dst := filepath.Join(tmp, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			return os.WriteFile(dst, data, 0o644) // module files are read-only
		})
		if err != nil {
			return fmt.Errorf("copy Kueue's %s: %w", part, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("copy Kueue's manifests: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("install Kueue's manifests: %w", err)
	}
	return nil
}

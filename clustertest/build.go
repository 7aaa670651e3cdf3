package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// k8s.io/kubernetes and etcd's server cannot be go installed (their go.mod
// has replace directives), so each is built from a throw-away module that
// requires it. kwok can be go installed.

// kubernetesCommands are the k8s.io/kubernetes/cmd packages built.
var kubernetesCommands = []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}

func buildKubernetes(ctx context.Context, r *goRunner, bins Binaries) error {
	dir, cleanup, err := r.tempModule(ctx, "kubernetes")
	if err != nil {
		return err
	}
	defer cleanup()
	env := moduleEnv()
	mod := "k8s.io/kubernetes@" + kubernetesVersion
	out, err := r.run(ctx, "download "+mod, dir, env, "mod", "download", "-json", mod)
	if err != nil {
		return err
	}
	var download struct{ GoMod string }
	if err := json.Unmarshal(out, &download); err != nil || download.GoMod == "" {
		return fmt.Errorf("read go mod download output for %s: %v", mod, err)
	}
	goMod, err := r.run(ctx, "", dir, env, "mod", "edit", "-json", download.GoMod)
	if err != nil {
		return err
	}
	edits, err := kubernetesModEdits(goMod)
	if err != nil {
		return err
	}
	if _, err := r.run(ctx, "", dir, env, append([]string{"mod", "edit"}, edits...)...); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tools.go"), kubernetesToolsFile(), 0o644); err != nil {
		return fmt.Errorf("write tools.go: %w", err)
	}
	if _, err := r.run(ctx, "go mod tidy (kubernetes)", dir, env, "mod", "tidy"); err != nil {
		return err
	}
	outs := map[string]string{
		"kube-apiserver":          bins.KubeAPIServer,
		"kube-controller-manager": bins.KubeControllerManager,
		"kube-scheduler":          bins.KubeScheduler,
	}
	for _, name := range kubernetesCommands {
		if err := r.buildTo(ctx, dir, outs[name], "k8s.io/kubernetes/cmd/"+name, "-ldflags", kubernetesLDFlags()); err != nil {
			return err
		}
	}
	return nil
}

// kubernetesModEdits returns the go mod edit flags that require
// k8s.io/kubernetes and point every k8s.io module of its replace block (its
// staging directories) at the published staging version. goModJSON is the
// output of go mod edit -json on kubernetes' go.mod.
func kubernetesModEdits(goModJSON []byte) ([]string, error) {
	var m struct {
		Replace []struct{ Old struct{ Path string } }
	}
	if err := json.Unmarshal(goModJSON, &m); err != nil {
		return nil, fmt.Errorf("read kubernetes go.mod: %w", err)
	}
	edits := []string{"-require=k8s.io/kubernetes@" + kubernetesVersion}
	for _, r := range m.Replace {
		if path := r.Old.Path; strings.HasPrefix(path, "k8s.io/") {
			edits = append(edits, fmt.Sprintf("-replace=%s=%s@%s", path, path, stagingVersion))
		}
	}
	if len(edits) == 1 {
		return nil, fmt.Errorf("kubernetes go.mod has no k8s.io replace directives")
	}
	return edits, nil
}

// kubernetesToolsFile keeps the commands' packages in the module's graph
// through go mod tidy.
func kubernetesToolsFile() []byte {
	var b strings.Builder
	b.WriteString("//go:build tools\n\npackage tools\n\nimport (\n")
	for _, name := range kubernetesCommands {
		fmt.Fprintf(&b, "\t_ %q\n", "k8s.io/kubernetes/cmd/"+name)
	}
	b.WriteString(")\n")
	return []byte(b.String())
}

// kubernetesLDFlags stamps the version, which /version reports and
// clients check; unstamped, it reads v0.0.0-master.
func kubernetesLDFlags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(kubernetesVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	return fmt.Sprintf("-X k8s.io/component-base/version.gitVersion=%s -X k8s.io/component-base/version.gitMajor=%s -X k8s.io/component-base/version.gitMinor=%s",
		kubernetesVersion, major, minor)
}

func buildEtcd(ctx context.Context, r *goRunner, bins Binaries) error {
	dir, cleanup, err := r.tempModule(ctx, "etcd")
	if err != nil {
		return err
	}
	defer cleanup()
	server, ctl := "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3"
	if _, err := r.run(ctx, "go get etcd "+etcdVersion, dir, moduleEnv(), "get", server+"@"+etcdVersion, ctl+"@"+etcdVersion); err != nil {
		return err
	}
	if err := r.buildTo(ctx, dir, bins.Etcd, server); err != nil {
		return err
	}
	return r.buildTo(ctx, dir, bins.Etcdctl, ctl)
}

func buildKwok(ctx context.Context, r *goRunner, bins Binaries) error {
	gobin, err := os.MkdirTemp(filepath.Dir(bins.Kwok), ".kwok-")
	if err != nil {
		return fmt.Errorf("make build directory: %w", err)
	}
	defer os.RemoveAll(gobin)
	env := append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	pkg := "sigs.k8s.io/kwok/cmd/kwok@" + kwokVersion
	if _, err := r.run(ctx, "go install "+pkg, gobin, env, "install", pkg); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(gobin, "kwok"), bins.Kwok); err != nil {
		return fmt.Errorf("install kwok: %w", err)
	}
	return nil
}

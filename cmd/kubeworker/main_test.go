package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeworker/kubeworker/clustertest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// bin is the kubeworker binary built for the tests; localCluster the local
// control plane.
var (
	bin          string
	localCluster *clustertest.Cluster
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kubeworker-cli")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "kubeworker")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := clustertest.Main(m, &localCluster, clustertest.Options{})
	os.RemoveAll(dir)
	os.Exit(code)
}

// kubeworker runs the built binary as a user would.
func kubeworker(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs; got:\n%s", path, got)
	}
}

// TestCommandGolden runs the binary on golden inputs: output and exit
// status as a user sees them, never a Go stack trace.
func TestCommandGolden(t *testing.T) {
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"render-default", "", []string{"render", "--set", "image=busybox:stable", "--run-id", "r-1", "--run-name", "Nightly ETL"}, 0},
		{"render-json", "", []string{"render", "-o", "json", "--set", "image=busybox:stable", "--run-id", "r-1"}, 0},
		{"render-file", "", []string{"render", "-f", "testdata/template.yaml", "--values", "testdata/values.yaml", "--set", "name=Москва", "-n", "team-a"}, 0},
		{"render-stdin", "image: from-stdin\n", []string{"render", "-f", "testdata/template.yaml", "--values", "-", "--run-id", "r-2"}, 0},
		{"validate-ok", "", []string{"validate", "-f", "testdata/template.yaml", "--set", "image=x"}, 0},
		{"validate-bad-values", "", []string{"validate", "-f", "testdata/template.yaml", "--set", "image=1", "--set", "exit_code=[1]", "--set", "nope=1"}, 1},
		{"validate-missing-required", "", []string{"validate", "-f", "testdata/template.yaml"}, 1},
		{"validate-broken-template", "", []string{"validate", "-f", "testdata/broken.yaml"}, 1},
		{"missing-file", "", []string{"render", "-f", "testdata/no-such-file.yaml"}, 1},
		{"bad-set", "", []string{"render", "--set", "novalue"}, 2},
		{"bad-output", "", []string{"render", "-o", "xml"}, 2},
		{"unknown-flag", "", []string{"render", "--frobnicate"}, 2},
		{"unknown-command", "", []string{"deploy"}, 2},
		{"stray-argument", "", []string{"validate", "extra"}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := kubeworker(t, c.stdin, c.args...)
			if code != c.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, c.code, stderr)
			}
			if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
				t.Errorf("a Go stack trace:\n%s", stderr)
			}
			golden(t, c.name, "stdout:\n"+stdout+"stderr:\n"+stderr)
		})
	}
}

// TestCommandUnreachableCluster: a cluster that does not answer is one
// clear message and status 1.
func TestCommandUnreachableCluster(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
current-context: c
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := kubeworker(t, "", "preflight", "--kubeconfig", kc, "--set", "image=x")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1") || strings.Contains(stderr, "goroutine ") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	_, stderr, code = kubeworker(t, "", "run", "--kubeconfig", kc, "--context", "nope", "--set", "image=x")
	if code != 1 || !strings.Contains(stderr, "context was not found for specified context: nope") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
}

// TestCommandOnTheLocalCluster: preflight and run against a real control
// plane, as a user would from a shell.
func TestCommandOnTheLocalCluster(t *testing.T) {
	ns := localCluster.NewNamespace(t)
	kc := localCluster.Kubeconfig()
	stdout, stderr, code := kubeworker(t, "", "preflight", "--kubeconfig", kc, "-n", ns, "-o", "json", "--set", "image=busybox")
	var rep struct {
		OK         bool     `json:"ok"`
		Namespaces []string `json:"namespaces"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 0 || !rep.OK || len(rep.Namespaces) == 0 || rep.Namespaces[0] != ns {
		t.Errorf("preflight: exit %d, report %+v (%v)\nstdout:\n%s\nstderr:\n%s", code, rep, err, stdout, stderr)
	}

	stdout, stderr, code = kubeworker(t, "", "run", "--kubeconfig", kc, "-n", ns, "-f", "testdata/template.yaml",
		"--values", "testdata/values.yaml", "--set", `log="line 1\nline 2"`, "--run-id", "cli-run-1")
	if code != 3 || stdout != "line 1\nline 2\n" || !strings.Contains(stderr, "run cli-run-1: Failed, exit code 3") {
		t.Errorf("run: exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	_, stderr, code = kubeworker(t, "", "run", "--kubeconfig", kc, "-n", ns, "-f", "testdata/template.yaml", "--set", "image=x", "-o", "json")
	var res struct {
		Outcome  string `json:"outcome"`
		ExitCode int    `json:"exitCode"`
	}
	if err := json.Unmarshal([]byte(stderr), &res); err != nil || code != 0 || res.Outcome != "Succeeded" {
		t.Errorf("run -o json: exit %d, %+v (%v)\nstderr:\n%s", code, res, err, stderr)
	}
}

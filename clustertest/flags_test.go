package clustertest

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flagValue returns the value of --name in args, and whether it is there
// exactly once.
func flagValue(args []string, name string) (string, bool) {
	var values []string
	for _, a := range args {
		if a == "--"+name {
			values = append(values, "")
		} else if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			values = append(values, v)
		}
	}
	if len(values) != 1 {
		return "", false
	}
	return values[0], true
}

// checkFlags fails for each wanted flag that is missing or different.
func checkFlags(t *testing.T, args []string, want map[string]string) {
	t.Helper()
	for name, w := range want {
		got, ok := flagValue(args, name)
		if !ok {
			t.Errorf("--%s: missing or repeated in %q", name, args)
			continue
		}
		if got != w {
			t.Errorf("--%s = %q, want %q", name, got, w)
		}
	}
}

// checkLoopbackOnly fails for any address in args that is not loopback.
func checkLoopbackOnly(t *testing.T, args []string) {
	t.Helper()
	for _, a := range args {
		for _, bad := range []string{"0.0.0.0", "localhost:", "[::]"} {
			if strings.Contains(a, bad) {
				t.Errorf("flag %q names a non-loopback address", a)
			}
		}
	}
}

func TestEtcdArgsBindClientAndPeerToLoopback(t *testing.T) {
	args := etcdArgs(etcdConfig{dataDir: "/d/etcd", clientPort: 2379, peerPort: 2380})
	checkFlags(t, args, map[string]string{
		"data-dir":                    "/d/etcd",
		"listen-client-urls":          "http://127.0.0.1:2379",
		"advertise-client-urls":       "http://127.0.0.1:2379",
		"listen-peer-urls":            "http://127.0.0.1:2380",
		"initial-advertise-peer-urls": "http://127.0.0.1:2380",
		"initial-cluster":             "testcluster=http://127.0.0.1:2380",
		"unsafe-no-fsync":             "",
	})
	checkLoopbackOnly(t, args)
}

func TestAPIServerArgs(t *testing.T) {
	c := apiServerConfig{
		port: 6443, etcdURL: "http://127.0.0.1:2379", caFile: "ca.crt", certFile: "api.crt", keyFile: "api.key",
		saSigningKeyFile: "sa.key", saPublicKeyFile: "sa.pub", tokenFile: "tokens.csv",
		kubeletCertFile: "kc.crt", kubeletKeyFile: "kc.key",
		proxyCertFile: "fp.crt", proxyKeyFile: "fp.key", egressFile: "egress.yaml",
	}
	t.Run("secures and confines the server", func(t *testing.T) {
		args := apiServerArgs(c)
		checkFlags(t, args, map[string]string{
			"etcd-servers":                            "http://127.0.0.1:2379",
			"bind-address":                            "127.0.0.1",
			"advertise-address":                       "127.0.0.1",
			"secure-port":                             "6443",
			"client-ca-file":                          "ca.crt",
			"tls-cert-file":                           "api.crt",
			"tls-private-key-file":                    "api.key",
			"token-auth-file":                         "tokens.csv",
			"authorization-mode":                      "Node,RBAC",
			"service-account-key-file":                "sa.pub",
			"service-account-signing-key-file":        "sa.key",
			"endpoint-reconciler-type":                "none",
			"kubelet-client-certificate":              "kc.crt",
			"kubelet-client-key":                      "kc.key",
			"kubelet-certificate-authority":           "ca.crt",
			"kubelet-preferred-address-types":         "InternalIP",
			"disable-admission-plugins":               "TaintNodesByCondition",
			"allow-privileged":                        "true",
			"shutdown-watch-termination-grace-period": "2s",
			"egress-selector-config-file":             "egress.yaml",
			"proxy-client-cert-file":                  "fp.crt",
			"proxy-client-key-file":                   "fp.key",
			"requestheader-client-ca-file":            "ca.crt",
			"requestheader-allowed-names":             "front-proxy-client",
		})
		checkLoopbackOnly(t, args)
	})
	t.Run("turns the watch cache off by default", func(t *testing.T) {
		checkFlags(t, apiServerArgs(c), map[string]string{"watch-cache": "false"})
	})
	t.Run("turns the watch cache on when asked", func(t *testing.T) {
		c := c
		c.watchCache = true
		checkFlags(t, apiServerArgs(c), map[string]string{"watch-cache": "true"})
	})
}

func TestControllerManagerArgsRunTheControllersJobsNeed(t *testing.T) {
	args := controllerManagerArgs(controllerManagerConfig{
		port: 10257, kubeconfig: "kcm.kubeconfig", certFile: "kcm.crt", keyFile: "kcm.key",
		caFile: "ca.crt", saSigningKeyFile: "sa.key",
	})
	checkFlags(t, args, map[string]string{
		"kubeconfig":                       "kcm.kubeconfig",
		"authentication-kubeconfig":        "kcm.kubeconfig",
		"authorization-kubeconfig":         "kcm.kubeconfig",
		"bind-address":                     "127.0.0.1",
		"secure-port":                      "10257",
		"leader-elect":                     "false",
		"use-service-account-credentials":  "true",
		"service-account-private-key-file": "sa.key",
		"root-ca-file":                     "ca.crt",
	})
	checkLoopbackOnly(t, args)
	got, _ := flagValue(args, "controllers")
	want := []string{
		"clusterrole-aggregation-controller", "garbage-collector-controller", "job-controller",
		"namespace-controller", "pod-garbage-collector-controller", "resourcequota-controller", "root-ca-certificate-publisher-controller",
		"serviceaccount-controller", "serviceaccount-token-controller", "ttl-after-finished-controller",
	}
	gotList := strings.Split(got, ",")
	slices.Sort(gotList)
	if diff := cmp.Diff(want, gotList); diff != "" {
		t.Errorf("--controllers (-want +got):\n%s", diff)
	}
}

func TestSchedulerArgs(t *testing.T) {
	args := schedulerArgs(schedulerConfig{port: 10259, kubeconfig: "s.kubeconfig", certFile: "s.crt", keyFile: "s.key"})
	checkFlags(t, args, map[string]string{
		"kubeconfig":                "s.kubeconfig",
		"authentication-kubeconfig": "s.kubeconfig",
		"authorization-kubeconfig":  "s.kubeconfig",
		"bind-address":              "127.0.0.1",
		"secure-port":               "10259",
		"leader-elect":              "false",
		"tls-cert-file":             "s.crt",
	})
	checkLoopbackOnly(t, args)
}

func TestKwokArgsServeNodesOnLoopback(t *testing.T) {
	args := kwokArgs(kwokConfig{port: 10250, kubeconfig: "k.kubeconfig", configFile: "stages.yaml", certFile: "k.crt", keyFile: "k.key"})
	checkFlags(t, args, map[string]string{
		"kubeconfig":                            "k.kubeconfig",
		"config":                                "stages.yaml",
		"manage-nodes-with-annotation-selector": "kwok.x-k8s.io/node=fake",
		"node-ip":                               "127.0.0.1",
		"node-port":                             "10250",
		"server-address":                        "127.0.0.1:10250",
		"cidr":                                  "127.1.0.0/16",
		"enable-crds":                           "Logs,ClusterLogs",
		"tls-cert-file":                         "k.crt",
		"tls-private-key-file":                  "k.key",
	})
	checkLoopbackOnly(t, args)
}

func TestKubernetesModEditsReplaceEveryStagingModule(t *testing.T) {
	goMod := []byte(`{"Module":{"Path":"k8s.io/kubernetes"},"Replace":[
		{"Old":{"Path":"k8s.io/api"},"New":{"Path":"./staging/src/k8s.io/api"}},
		{"Old":{"Path":"k8s.io/externaljwt"},"New":{"Path":"./staging/src/k8s.io/externaljwt"}},
		{"Old":{"Path":"github.com/other/mod"},"New":{"Path":"github.com/fork/mod","Version":"v1.0.0"}}]}`)
	got, err := kubernetesModEdits(goMod)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"-require=k8s.io/kubernetes@v1.37.2",
		"-replace=k8s.io/api=k8s.io/api@v0.37.2",
		"-replace=k8s.io/externaljwt=k8s.io/externaljwt@v0.37.2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("edits (-want +got):\n%s", diff)
	}
	if _, err := kubernetesModEdits([]byte(`{"Replace":[]}`)); err == nil {
		t.Error("a go.mod without k8s.io replaces: got no error")
	}
}

func TestKubernetesBuildStampsTheVersion(t *testing.T) {
	want := "-X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37"
	if got := kubernetesLDFlags(); got != want {
		t.Errorf("ldflags = %q, want %q", got, want)
	}
	tools := string(kubernetesToolsFile())
	for _, name := range kubernetesCommands {
		if !strings.Contains(tools, `_ "k8s.io/kubernetes/cmd/`+name+`"`) {
			t.Errorf("tools.go does not import %s:\n%s", name, tools)
		}
	}
	if !strings.HasPrefix(tools, "//go:build tools\n") {
		t.Errorf("tools.go lacks the tools build tag:\n%s", tools)
	}
}

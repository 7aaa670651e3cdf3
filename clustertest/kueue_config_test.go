package clustertest

import (
	"os"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var testKueueConfig = kueueConfig{
	webhookPort: 9443, metricsPort: 8443, healthPort: 8081, visibilityPort: 8082,
	dir: "/c/kueue", certDir: "/c/kueue/certs", kubeconfig: "/c/kueue/kueue.kubeconfig", configFile: "/c/kueue/config.yaml",
}

func TestKueueConfigurationBindsLoopbackAndManagesOnlyQueuedJobs(t *testing.T) {
	data, err := kueueConfiguration(testKueueConfig)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion":                    "config.kueue.x-k8s.io/v1beta2",
		"kind":                          "Configuration",
		"webhook.host":                  "127.0.0.1",
		"webhook.port":                  float64(9443),
		"webhook.certDir":               "/c/kueue/certs",
		"metrics.bindAddress":           "127.0.0.1:8443",
		"health.healthProbeBindAddress": "127.0.0.1:8081",
		"leaderElection.leaderElect":    false,
		"internalCertManagement.enable": false,
		"manageJobsWithoutQueueName":    false,
		"visibilityServer.bindAddress":  "127.0.0.1",
		"integrations.frameworks":       []any{"batch/job"},
		"clientConnection.qps":          float64(500),
		"namespace":                     "kueue-system",
		"clientConnection.burst":        float64(1000),
	}
	for path, w := range want {
		got, found, err := unstructured.NestedFieldNoCopy(conf, strings.Split(path, ".")...)
		if err != nil || !found {
			t.Errorf("%s missing (%v)", path, err)
			continue
		}
		if yamlString(t, got) != yamlString(t, w) {
			t.Errorf("%s = %v, want %v", path, got, w)
		}
	}
	if gates, found, _ := unstructured.NestedMap(conf, "featureGates"); found {
		t.Errorf("feature gates %v: want every gate at its default", gates)
	}
	args := kueueArgs(testKueueConfig)
	checkFlags(t, args, map[string]string{"config": "/c/kueue/config.yaml", "kubeconfig": "/c/kueue/kueue.kubeconfig", "visibility-server-port": "8082"})
	if env := kueueEnv(testKueueConfig); !slices.Contains(env, "KUEUE_METRICS_CERT_DIR=/c/kueue/certs") {
		t.Error("the metrics certificate directory is not in Kueue's environment")
	}
}

func yamlString(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKueueWebhooksPointAtTheLocalKueueForItsKindsAndQueuedJobs(t *testing.T) {
	manifests, err := os.ReadFile("testdata/kueue/webhook-manifests.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ca := []byte("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
	mutating, validating, err := kueueWebhooks(manifests, testKueueConfig, ca)
	if err != nil {
		t.Fatal(err)
	}
	if mutating.Name != "kueue-mutating-webhook-configuration" || validating.Name != "kueue-validating-webhook-configuration" {
		t.Errorf("names %q, %q: want Kueue's release names", mutating.Name, validating.Name)
	}
	type hook struct {
		name   string
		cc     admissionregistrationv1.WebhookClientConfig
		sel    *metav1.LabelSelector
		policy *admissionregistrationv1.FailurePolicyType
	}
	var hooks []hook
	for _, w := range mutating.Webhooks {
		hooks = append(hooks, hook{w.Name, w.ClientConfig, w.ObjectSelector, w.FailurePolicy})
	}
	for _, w := range validating.Webhooks {
		hooks = append(hooks, hook{w.Name, w.ClientConfig, w.ObjectSelector, w.FailurePolicy})
	}
	wantURL := map[string]string{
		"mjob.kb.io":      "https://127.0.0.1:9443/mutate-batch-v1-job",
		"mworkload.kb.io": "https://127.0.0.1:9443/mutate-kueue-x-k8s-io-v1beta2-workload",
		"vjob.kb.io":      "https://127.0.0.1:9443/validate-batch-v1-job",
		"vworkload.kb.io": "https://127.0.0.1:9443/validate-kueue-x-k8s-io-v1beta2-workload",
	}
	if len(hooks) != len(wantURL) {
		t.Errorf("%d webhooks, want %d (not the pod or Deployment ones)", len(hooks), len(wantURL))
	}
	for _, h := range hooks {
		want, ok := wantURL[h.name]
		if !ok {
			t.Errorf("webhook %s registered", h.name)
			continue
		}
		if h.cc.URL == nil || *h.cc.URL != want || h.cc.Service != nil || string(h.cc.CABundle) != string(ca) {
			t.Errorf("webhook %s client config %+v, want url %s and the CA", h.name, h.cc, want)
		}
		if h.policy == nil || *h.policy != admissionregistrationv1.Fail {
			t.Errorf("webhook %s failure policy %v, want Kueue's Fail", h.name, h.policy)
		}
		isJob := strings.Contains(h.name, "job")
		if hasSel := h.sel != nil && len(h.sel.MatchExpressions) == 1 && h.sel.MatchExpressions[0].Key == kueueQueueLabel &&
			h.sel.MatchExpressions[0].Operator == metav1.LabelSelectorOpExists; hasSel != isJob {
			t.Errorf("webhook %s object selector %v: want the queue label exactly on Job webhooks", h.name, h.sel)
		}
	}
}

func TestKueueCRDConversionPointsAtTheLocalKueue(t *testing.T) {
	var patch kueueConversion
	err := yaml.Unmarshal([]byte(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: workloads.kueue.x-k8s.io
spec:
  conversion:
    strategy: Webhook
    webhook:
      clientConfig:
        service:
          namespace: system
          name: webhook-service
          path: /convert
      conversionReviewVersions:
      - v1
`), &patch)
	if err != nil {
		t.Fatal(err)
	}
	crd := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"group": "kueue.x-k8s.io"}}}
	if err := kueueCRDConversion(crd, patch, testKueueConfig, []byte("CA")); err != nil {
		t.Fatal(err)
	}
	got := yamlString(t, crd.Object["spec"])
	want := `conversion:
  strategy: Webhook
  webhook:
    clientConfig:
      caBundle: Q0E=
      url: https://127.0.0.1:9443/convert
    conversionReviewVersions:
    - v1
group: kueue.x-k8s.io
`
	if got != want {
		t.Errorf("spec:\n%s\nwant:\n%s", got, want)
	}
}

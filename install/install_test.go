package install

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubeworker/kubeworker/agent"
	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/fleet"
)

var updateDeployGolden = flag.Bool("update", false, "rewrite the golden files testdata/deploy*.golden.yaml")

// decodeManifest splits a DeploymentManifest into typed objects.
func decodeManifest(t *testing.T, data []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for _, doc := range strings.Split(string(data), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode %q: %v", doc, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

func TestDeploymentManifestMatchesTheGoldenFile(t *testing.T) {
	etl := Options{
		Name:         "etl-worker",
		Namespace:    "workers",
		JobNamespace: "jobs",
		Image:        "example.com/etl-worker:1.2.3",
		Args:         []string{"--queue", "etl"},
		Env:          []corev1.EnvVar{{Name: "QUEUE_URL", Value: "https://queue.example.com"}},
		Secrets:      true,
	}
	replicas := etl
	replicas.Replicas = 3
	for _, tc := range []struct {
		golden string
		opts   Options
	}{
		{"deploy.golden.yaml", etl},
		{"deploy-fleet.golden.yaml", replicas},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := DeploymentManifest(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *updateDeployGolden {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("DeploymentManifest differs from %s (run with -update to accept):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff lists the lines that differ, by number.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func TestDeploymentManifestObjects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		check func(t *testing.T, objs []runtime.Object)
	}{
		{"defaults: one namespace, no secrets, a ClusterRole for the kube-system UID only", Options{Image: "w:1"}, func(t *testing.T, objs []runtime.Object) {
			if len(objs) != 6 {
				t.Fatalf("%d objects, want 6", len(objs))
			}
			role := objs[1].(*rbacv1.Role)
			if role.Namespace != "default" || role.Name != "kubeworker" {
				t.Errorf("Role %s/%s, want default/kubeworker", role.Namespace, role.Name)
			}
			for _, r := range role.Rules {
				if r.Resources[0] == "secrets" {
					t.Error("the Role grants Secrets without Options.Secrets")
				}
				if r.APIGroups[0] == "kueue.x-k8s.io" {
					t.Error("the Role grants Kueue objects without Options.Queues")
				}
			}
			cr := objs[3].(*rbacv1.ClusterRole)
			if r := cr.Rules[0]; len(cr.Rules) != 1 || r.Resources[0] != "namespaces" || r.ResourceNames[0] != "kube-system" || r.Verbs[0] != "get" || len(r.Verbs) != 1 {
				t.Errorf("ClusterRole rules %+v, want get on namespace kube-system only", cr.Rules)
			}
			crb := objs[4].(*rbacv1.ClusterRoleBinding)
			if crb.RoleRef.Name != cr.Name || crb.Subjects[0].Name != "kubeworker" || crb.Subjects[0].Namespace != "default" {
				t.Errorf("ClusterRoleBinding %+v does not bind the ClusterRole to the ServiceAccount", crb)
			}
			d := objs[5].(*appsv1.Deployment)
			c := d.Spec.Template.Spec.Containers[0]
			if c.LivenessProbe.HTTPGet.Path != agent.LivenessPath || c.ReadinessProbe.HTTPGet.Path != agent.ReadinessPath || c.Ports[0].ContainerPort != 8080 {
				t.Errorf("probes %+v %+v on port %d, want /healthz and /readyz on 8080", c.LivenessProbe, c.ReadinessProbe, c.Ports[0].ContainerPort)
			}
			if !*d.Spec.Template.Spec.SecurityContext.RunAsNonRoot || !*c.SecurityContext.RunAsNonRoot || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Error("the pod may run as root or escalate")
			}
			if d.Spec.Template.Spec.ServiceAccountName != "kubeworker" {
				t.Errorf("service account %q", d.Spec.Template.Spec.ServiceAccountName)
			}
			if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("%d replicas by %s, want one, replaced by Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
			}
			for _, r := range role.Rules {
				if r.Resources[0] == "leases" || slices.Contains(r.Verbs, "update") {
					t.Errorf("one replica is granted %v %v, a fleet's rule", r.Resources, r.Verbs)
				}
			}
		}},
		{"replicas make a fleet: Lease rules, the pod name as identity, a rolling update and a disruption budget", Options{Image: "w:1", Replicas: 3, ClusterUID: "u"}, func(t *testing.T, objs []runtime.Object) {
			if len(objs) != 5 {
				t.Fatalf("%d objects, want 5", len(objs))
			}
			got := map[string][]string{}
			for _, r := range objs[1].(*rbacv1.Role).Rules {
				got[r.Resources[0]] = append(got[r.Resources[0]], r.Verbs...)
			}
			if want := []string{"get", "create", "update", "delete", "list", "watch"}; !slices.Equal(got["leases"], want) {
				t.Errorf("leases verbs %v, want %v", got["leases"], want)
			}
			if !slices.Contains(got["jobs"], "update") {
				t.Errorf("jobs verbs %v lack update (the claim of a departed replica's Job)", got["jobs"])
			}
			d := objs[3].(*appsv1.Deployment)
			if *d.Spec.Replicas != 3 {
				t.Errorf("%d replicas, want 3", *d.Spec.Replicas)
			}
			ru := d.Spec.Strategy.RollingUpdate
			if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable.IntValue() != 1 || ru.MaxSurge.IntValue() != 1 {
				t.Errorf("strategy %+v, want a rolling update of maxUnavailable 1, maxSurge 1", d.Spec.Strategy)
			}
			env := d.Spec.Template.Spec.Containers[0].Env
			i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == fleet.EnvPodName })
			if i < 0 || env[i].ValueFrom == nil || env[i].ValueFrom.FieldRef == nil || env[i].ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("env %+v, want %s from metadata.name", env, fleet.EnvPodName)
			}
			pdb := objs[4].(*policyv1.PodDisruptionBudget)
			if pdb.Namespace != d.Namespace || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
				t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 in the Deployment's namespace", pdb)
			}
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("the PodDisruptionBudget's selector %v does not select the Deployment's pods %v: %v", pdb.Spec.Selector, d.Spec.Template.Labels, err)
			}
		}},
		{"a given cluster UID replaces the ClusterRole with an env var", Options{Image: "w:1", ClusterUID: "abc"}, func(t *testing.T, objs []runtime.Object) {
			if len(objs) != 4 {
				t.Fatalf("%d objects, want 4", len(objs))
			}
			env := objs[3].(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env
			if len(env) != 1 || env[0].Name != clusterid.EnvUID || env[0].Value != "abc" {
				t.Errorf("env %+v, want %s=abc", env, clusterid.EnvUID)
			}
		}},
		{"queues add Kueue's Workloads and LocalQueues", Options{Image: "w:1", Queues: true, ClusterUID: "u"}, func(t *testing.T, objs []runtime.Object) {
			got := map[string][]string{}
			for _, r := range objs[1].(*rbacv1.Role).Rules {
				if r.APIGroups[0] == "kueue.x-k8s.io" {
					got[r.Resources[0]] = r.Verbs
				}
			}
			if want := map[string][]string{"workloads": {"list", "watch"}, "localqueues": {"get"}}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Kueue rules %v, want %v", got, want)
			}
		}},
		{"the Role and RoleBinding go to the Job namespace", Options{Image: "w:1", Namespace: "a", JobNamespace: "b", ClusterUID: "u"}, func(t *testing.T, objs []runtime.Object) {
			rb := objs[2].(*rbacv1.RoleBinding)
			if objs[0].(*corev1.ServiceAccount).Namespace != "a" || objs[1].(*rbacv1.Role).Namespace != "b" || rb.Namespace != "b" || rb.Subjects[0].Namespace != "a" {
				t.Errorf("objects %v in the wrong namespaces", objs)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := DeploymentManifest(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, decodeManifest(t, data))
		})
	}
}

func TestDeploymentManifestNamesEveryBadField(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"no image", Options{}, []string{"Options.Image"}},
		{"negative replicas", Options{Image: "w:1", Replicas: -1}, []string{"Options.Replicas"}},
		{"POD_NAME given to replicas", Options{Image: "w:1", Replicas: 2, Env: []corev1.EnvVar{{Name: "A"}, {Name: fleet.EnvPodName, Value: "x"}}}, []string{"Options.Env[1]"}},
		{"all at once", Options{Replicas: -2}, []string{"Options.Image", "Options.Replicas"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DeploymentManifest(tc.opts)
			if err == nil {
				t.Fatal("no error")
			}
			for _, f := range tc.want {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("got %v, want it to name %s", err, f)
				}
			}
		})
	}
	// One replica may set POD_NAME: it is no fleet.
	if _, err := DeploymentManifest(Options{Image: "w:1", Env: []corev1.EnvVar{{Name: fleet.EnvPodName, Value: "x"}}}); err != nil {
		t.Errorf("one replica with %s: %v", fleet.EnvPodName, err)
	}
}

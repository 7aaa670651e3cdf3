// Package install writes what runs a kubeworker process in a cluster: a
// ServiceAccount, the Role of worker.Rules and its binding, and a
// Deployment probed on the agent's health endpoints; for a fleet of
// replicas (worker.Options.Fleet), also the Lease rules of
// worker.FleetRules and a PodDisruptionBudget.
package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/agent"
	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/fleet"
	"github.com/kubeworker/kubeworker/worker"
)

// Options describe the worker process that DeploymentManifest
// deploys. Only Image is required.
type Options struct {
	// Name names the ServiceAccount, Role, RoleBinding, Deployment and, if
	// any, ClusterRole and ClusterRoleBinding. Default: "kubeworker".
	Name string
	// Namespace is where the Deployment and its ServiceAccount go.
	// Default: "default".
	Namespace string
	// JobNamespace is where the worker creates Jobs, so where the Role and
	// RoleBinding go. Default: Namespace.
	JobNamespace string
	// Image is the image of the worker process; required.
	Image string
	// Args and Env are the worker container's arguments and environment.
	// Default: none. With Replicas above 1, Env must not set
	// fleet.EnvPodName, which the manifest sets to the pod's name.
	Args []string
	Env  []corev1.EnvVar
	// Replicas is how many worker processes the Deployment runs. Above 1
	// they are replicas of one fleet: each must run its Worker with
	// worker.Options.Fleet enabled and its Leases in JobNamespace (leave
	// Fleet.Namespace unset and set Options.Namespace to JobNamespace, or
	// set Fleet.Namespace to it). The Role then also grants
	// worker.FleetRules, the container gets fleet.EnvPodName from the
	// pod's name (the replica's default Identity), and a
	// PodDisruptionBudget lets voluntary disruptions take one replica at
	// a time. Default (0): 1, a single process and no fleet; negative is
	// an error.
	Replicas int32
	// HealthPort is the port the process serves agent.Agent.HealthHandler on;
	// the liveness probe gets agent.LivenessPath and the readiness probe
	// agent.ReadinessPath there. Default: 8080.
	HealthPort int32
	// Resources of the worker container. Default: requests of 100m CPU and
	// 128Mi memory, a limit of 256Mi memory.
	Resources *corev1.ResourceRequirements
	// RunAsUser is the non-root user ID the worker runs as. Default:
	// 65532, the "nonroot" user of distroless images.
	RunAsUser int64
	// Secrets grants get, create, update and delete on Secrets in
	// JobNamespace: set it when the worker's Options.Secrets asks for
	// secret mode. Default: false, no access to Secrets.
	Secrets bool
	// Queues grants what runs through Kueue need (worker.QueueRules: list
	// and watch on Workloads, get on LocalQueues and on their pending
	// workloads in Kueue's visibility API) in JobNamespace: set it
	// when templates give a queue_name. Default: false.
	Queues bool
	// ClusterUID, when set, is given to the process as clusterid.EnvUID,
	// so it need not read the kube-system namespace's UID; no cluster-wide
	// rights are granted then. Default: "", and the manifest adds a
	// ClusterRole and ClusterRoleBinding granting get on the kube-system
	// namespace only.
	ClusterUID string
}

// roleRules are the rules of the Role in the Job namespace.
func roleRules(opts Options) []rbacv1.PolicyRule {
	rules := worker.Rules(opts.Secrets)
	if opts.Queues {
		rules = append(rules, worker.QueueRules()...)
	}
	if opts.Replicas > 1 {
		rules = append(rules, worker.FleetRules()...)
	}
	return rules
}

// DeploymentManifest returns the YAML documents, separated by "---", that
// run a worker process in a cluster: a ServiceAccount, a Role and
// RoleBinding in the Job namespace granting only what the library uses, a
// ClusterRole and ClusterRoleBinding for the cluster UID unless
// opts.ClusterUID is given, and a Deployment that runs as non-root with a
// read-only root filesystem, with liveness and readiness probes on
// agent.Agent.HealthHandler.
//
// The Role's rules are those of [worker.Rules], [worker.QueueRules] with
// opts.Queues, and [worker.FleetRules] with opts.Replicas above 1.
//
// With one replica (the default) the Deployment replaces its pod by
// Recreate: a single process, never two at once. With opts.Replicas above
// 1 the pods are a fleet's replicas, each named by its pod's name
// (fleet.EnvPodName from the downward API), and the manifest ends with a
// PodDisruptionBudget of maxUnavailable 1. The Deployment then rolls
// (RollingUpdate, maxUnavailable 1, maxSurge 1): a replica that stops
// gives its Lease up and the others take its runs over at once, so at
// least Replicas-1 replicas serve throughout, and the new pod may start
// before an old one stops, as a fleet has no duty that only one member
// may hold (each replica renews its own Lease only).
//
// Every problem with opts comes back at once, each naming its field.
// Apply the manifest with kubectl apply -f, or decode the documents with
// a universal deserializer.
func DeploymentManifest(opts Options) ([]byte, error) {
	objs, err := deployObjects(opts)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for i, obj := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		doc, err := toYAML(obj)
		if err != nil {
			return nil, fmt.Errorf("install: deployment manifest: %w", err)
		}
		buf.Write(doc)
	}
	return buf.Bytes(), nil
}

// deployObjects builds the typed objects of DeploymentManifest.
func deployObjects(opts Options) ([]runtime.Object, error) {
	if err := check(opts); err != nil {
		return nil, err
	}
	if opts.Name == "" {
		opts.Name = "kubeworker"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.JobNamespace == "" {
		opts.JobNamespace = opts.Namespace
	}
	if opts.RunAsUser == 0 {
		opts.RunAsUser = 65532
	}
	if opts.HealthPort == 0 {
		opts.HealthPort = 8080
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	labels := map[string]string{
		"app.kubernetes.io/name":     "kubeworker",
		"app.kubernetes.io/instance": opts.Name,
	}
	meta := func(ns string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: opts.Name, Namespace: ns, Labels: maps.Clone(labels)}
	}
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: opts.Name, Namespace: opts.Namespace}

	objs := []runtime.Object{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(opts.Namespace),
		},
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: meta(opts.JobNamespace),
			Rules:      roleRules(opts),
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: meta(opts.JobNamespace),
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: opts.Name},
			Subjects:   []rbacv1.Subject{subject},
		},
	}
	env := slices.Clone(opts.Env)
	if opts.ClusterUID != "" {
		env = append(env, corev1.EnvVar{Name: clusterid.EnvUID, Value: opts.ClusterUID})
	} else {
		// Cluster-scoped objects need a name unique in the cluster.
		name := opts.Name + "-" + opts.Namespace + "-cluster-uid"
		cm := metav1.ObjectMeta{Name: name, Labels: maps.Clone(labels)}
		objs = append(objs,
			&rbacv1.ClusterRole{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
				ObjectMeta: cm,
				Rules: []rbacv1.PolicyRule{{
					APIGroups: []string{""}, Resources: []string{"namespaces"},
					ResourceNames: []string{clusterid.UIDNamespace}, Verbs: []string{"get"},
				}},
			},
			&rbacv1.ClusterRoleBinding{
				TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
				ObjectMeta: cm,
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects:   []rbacv1.Subject{subject},
			})
	}
	if opts.Replicas > 1 {
		env = append(env, corev1.EnvVar{Name: fleet.EnvPodName, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"},
		}})
	}
	objs = append(objs, deployment(opts, labels, env))
	if opts.Replicas > 1 {
		objs = append(objs, &policyv1.PodDisruptionBudget{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: meta(opts.Namespace),
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: new(intstr.FromInt32(1)),
				Selector:       &metav1.LabelSelector{MatchLabels: maps.Clone(labels)},
			},
		})
	}
	return objs, nil
}

// check returns every problem with opts, each naming its field.
func check(opts Options) error {
	var errs []error
	if opts.Image == "" {
		errs = append(errs, errors.New("install: deployment manifest: Options.Image is required"))
	}
	if opts.Replicas < 0 {
		errs = append(errs, fmt.Errorf("install: deployment manifest: Options.Replicas is %d: it must be at least 1 (0 means 1)", opts.Replicas))
	}
	if opts.Replicas > 1 {
		for i, e := range opts.Env {
			if e.Name == fleet.EnvPodName {
				errs = append(errs, fmt.Errorf("install: deployment manifest: Options.Env[%d] sets %s, which names each of the %d replicas: the manifest sets it to the pod's name", i, e.Name, opts.Replicas))
			}
		}
	}
	return errors.Join(errs...)
}

// deployment builds the worker's Deployment.
func deployment(opts Options, labels map[string]string, env []corev1.EnvVar) *appsv1.Deployment {
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	if opts.Resources != nil {
		res = *opts.Resources
	}
	probe := func(path string, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString("health"),
			}},
			PeriodSeconds:    10,
			TimeoutSeconds:   5,
			FailureThreshold: failures,
		}
	}
	// One worker at a time: a second one would double the polling.
	strategy := appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	if opts.Replicas > 1 {
		// A fleet: one replica down at a time, its runs taken over at
		// once; a new one may join before an old one leaves.
		strategy = appsv1.DeploymentStrategy{
			Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: new(intstr.FromInt32(1)),
				MaxSurge:       new(intstr.FromInt32(1)),
			},
		}
	}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: opts.Name, Namespace: opts.Namespace, Labels: maps.Clone(labels)},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(opts.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: maps.Clone(labels)},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: maps.Clone(labels)},
				Spec: corev1.PodSpec{
					ServiceAccountName: opts.Name,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   new(true),
						RunAsUser:      new(opts.RunAsUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:           "worker",
						Image:          opts.Image,
						Args:           slices.Clone(opts.Args),
						Env:            env,
						Ports:          []corev1.ContainerPort{{Name: "health", ContainerPort: opts.HealthPort, Protocol: corev1.ProtocolTCP}},
						LivenessProbe:  probe(agent.LivenessPath, 3),
						ReadinessProbe: probe(agent.ReadinessPath, 1),
						Resources:      res,
						SecurityContext: &corev1.SecurityContext{
							RunAsNonRoot:             new(true),
							AllowPrivilegeEscalation: new(false),
							ReadOnlyRootFilesystem:   new(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
}

// toYAML writes obj as YAML without its status, which only the cluster
// fills in (a PodDisruptionBudget's zero counts are not omitted as
// empty).
func toYAML(obj runtime.Object) ([]byte, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	delete(m, "status")
	out, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(string(out), "\n") {
		out = append(out, '\n')
	}
	return out, nil
}

package clustertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
)

// kueueAPIVersion is the version of Kueue's API the kit writes: v1beta2,
// the storage version of v0.17.0.
const kueueAPIVersion = "kueue.x-k8s.io/v1beta2"

func kueueResource(plural string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: plural}
}

var (
	resourceFlavorResource        = kueueResource("resourceflavors")
	clusterQueueResource          = kueueResource("clusterqueues")
	localQueueResource            = kueueResource("localqueues")
	workloadPriorityClassResource = kueueResource("workloadpriorityclasses")
)

// DefaultFlavor is the ResourceFlavor of every ClusterQueue that
// [Cluster.AddQueue] makes: no node labels, so it stands for every node.
const DefaultFlavor = "default-flavor"

// QueueOptions describes a queue for [Cluster.AddQueue].
type QueueOptions struct {
	// Namespace is the LocalQueue's namespace. Required.
	Namespace string
	// LocalQueue is the LocalQueue's name: the value of a Job's
	// kueue.x-k8s.io/queue-name label. Default: "queue".
	LocalQueue string
	// ClusterQueue is the name of the ClusterQueue the LocalQueue sends its
	// Workloads to. It is created unless it exists; if it does, the fields
	// below are ignored, so several LocalQueues can share one.
	// ClusterQueues are cluster-wide and outlive a test's namespace.
	// Default: Namespace, which is unique to a test made with
	// [Cluster.NewNamespace].
	ClusterQueue string
	// CPU is the ClusterQueue's nominal quota of cpu in [DefaultFlavor],
	// as a quantity ("2", "500m"). Default: "1".
	CPU string
	// Memory is its nominal quota of memory. Default: "1Ti".
	Memory string
	// Preemption is the ClusterQueue's preemption.withinClusterQueue
	// policy: "" (Never: a Workload waits until quota frees up),
	// "LowerPriority" (it evicts admitted Workloads of lower priority in
	// the same ClusterQueue) or "LowerOrNewerEqualPriority".
	Preemption string
	// Cohort is the ClusterQueue's cohort (spec.cohortName): the
	// ClusterQueues of one cohort borrow each other's unused quota.
	// Default: none.
	Cohort string
}

// AddQueue makes a queue for Jobs in one call: the ResourceFlavor
// [DefaultFlavor] (shared by every ClusterQueue, made once), the
// ClusterQueue (quota for cpu and memory in that flavor; it admits from
// every namespace; BestEffortFIFO) and the LocalQueue in opts.Namespace.
// It returns once Kueue reports both queues Active, so a Job labelled
// kueue.x-k8s.io/queue-name: <LocalQueue> is admitted from then on. Kueue
// must have been started ([Cluster.StartKueue]).
func (c *Cluster) AddQueue(ctx context.Context, opts QueueOptions) error {
	if opts.Namespace == "" {
		return errors.New("add queue: QueueOptions.Namespace is required")
	}
	if err := c.kueueStarted(); err != nil {
		return fmt.Errorf("add queue: %w", err)
	}
	lq, cq := cmp.Or(opts.LocalQueue, "queue"), cmp.Or(opts.ClusterQueue, opts.Namespace)
	cpu, err := resource.ParseQuantity(cmp.Or(opts.CPU, "1"))
	if err != nil {
		return fmt.Errorf("add queue: CPU: %w", err)
	}
	mem, err := resource.ParseQuantity(cmp.Or(opts.Memory, "1Ti"))
	if err != nil {
		return fmt.Errorf("add queue: Memory: %w", err)
	}
	flavor := kueueObject("ResourceFlavor", "", DefaultFlavor, map[string]any{})
	cqSpec := map[string]any{
		"namespaceSelector": map[string]any{}, // every namespace; nil would be none
		"resourceGroups": []any{map[string]any{
			"coveredResources": []any{"cpu", "memory"},
			"flavors": []any{map[string]any{
				"name": DefaultFlavor,
				"resources": []any{
					map[string]any{"name": "cpu", "nominalQuota": cpu.String()},
					map[string]any{"name": "memory", "nominalQuota": mem.String()},
				},
			}},
		}},
	}
	if opts.Preemption != "" {
		cqSpec["preemption"] = map[string]any{"withinClusterQueue": opts.Preemption}
	}
	if opts.Cohort != "" {
		cqSpec["cohortName"] = opts.Cohort
	}
	steps := []struct {
		res schema.GroupVersionResource
		obj *unstructured.Unstructured
	}{
		{resourceFlavorResource, flavor},
		{clusterQueueResource, kueueObject("ClusterQueue", "", cq, cqSpec)},
		{localQueueResource, kueueObject("LocalQueue", opts.Namespace, lq, map[string]any{"clusterQueue": cq})},
	}
	for _, s := range steps {
		client := c.dyn.Resource(s.res).Namespace(s.obj.GetNamespace())
		if _, err := client.Create(ctx, s.obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("add queue: create %s %s: %w", s.obj.GetKind(), s.obj.GetName(), err)
		}
	}
	for _, s := range steps[1:] {
		if err := waitKueueActive(ctx, c.dyn.Resource(s.res).Namespace(s.obj.GetNamespace()), s.obj.GetName()); err != nil {
			return fmt.Errorf("add queue: %s %s: %w", s.obj.GetKind(), s.obj.GetName(), err)
		}
	}
	return nil
}

// AddWorkloadPriorityClass creates a Kueue WorkloadPriorityClass: a Job
// labelled kueue.x-k8s.io/priority-class: <name> gets value as its
// Workload's priority (higher is more important), which decides the order
// of admission and, with [QueueOptions.Preemption], who is preempted. It
// is cluster-wide; creating one that exists fails with AlreadyExists
// (apierrors.IsAlreadyExists). Kueue must have been started.
func (c *Cluster) AddWorkloadPriorityClass(ctx context.Context, name string, value int32) error {
	if err := c.kueueStarted(); err != nil {
		return fmt.Errorf("add workload priority class: %w", err)
	}
	obj := kueueObject("WorkloadPriorityClass", "", name, nil)
	obj.Object["value"] = int64(value)
	if _, err := c.dyn.Resource(workloadPriorityClassResource).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("add workload priority class %s: %w", name, err)
	}
	return nil
}

// kueueStarted fails unless StartKueue has set Kueue up (it may be
// stopped now).
func (c *Cluster) kueueStarted() error {
	c.kueueMu.Lock()
	defer c.kueueMu.Unlock()
	if c.kueue == nil || !c.kueue.crds {
		return errors.New("kueue is not started: call StartKueue first")
	}
	return nil
}

// kueueObject is a Kueue object of kind; spec is left out if nil.
func kueueObject(kind, namespace, name string, spec map[string]any) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": kueueAPIVersion, "kind": kind}}
	obj.SetName(name)
	obj.SetNamespace(namespace)
	if spec != nil {
		obj.Object["spec"] = spec
	}
	return obj
}

// waitKueueActive waits until the named queue has condition Active True.
func waitKueueActive(ctx context.Context, client dynamic.ResourceInterface, name string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		obj, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
		last = fmt.Sprint(conds)
		for _, cond := range conds {
			if m, _ := cond.(map[string]any); m["type"] == "Active" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("not Active: %w (conditions: %s)", err, last)
	}
	return nil
}

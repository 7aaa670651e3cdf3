package clustertest

import (
	"context"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// DefaultNodeName is the node every cluster starts with: no taints, cpu
// 1000, memory 1Ti, pods 1000000.
const DefaultNodeName = "kwok-node-0"

// NodeOptions describes a fake node for [Cluster.AddNode]. The zero value
// gives a node like the default one with a generated name.
type NodeOptions struct {
	// Name is the node's name. Default: generated, "kwok-node-" plus a
	// random suffix.
	Name string
	// Labels are added to the node's labels. kubernetes.io/hostname (the
	// name) and type=kwok are always set.
	Labels map[string]string
	// Taints are the node's taints. Default: none.
	Taints []corev1.Taint
	// Capacity is what the node offers to pods, also used as allocatable.
	// Default: cpu 1000, memory 1Ti, pods 1000000.
	Capacity corev1.ResourceList
}

// AddNode creates a node that kwok plays the kubelet of, and waits until it
// is Ready. The node's address is 127.0.0.1 and its kubelet port is kwok's
// server, which serves its pods' logs.
func (c *Cluster) AddNode(ctx context.Context, opts NodeOptions) (*corev1.Node, error) {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        opts.Name,
			Labels:      map[string]string{"type": "kwok"},
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		},
		Spec: corev1.NodeSpec{Taints: opts.Taints},
	}
	if node.Name == "" {
		node.GenerateName = "kwok-node-"
	} else {
		node.Labels[corev1.LabelHostname] = node.Name
	}
	maps.Copy(node.Labels, opts.Labels)
	if opts.Capacity != nil {
		node.Status.Capacity = opts.Capacity
		node.Status.Allocatable = opts.Capacity
	}
	nodes := c.client.CoreV1().Nodes()
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create node: %w", err)
	}
	if _, ok := created.Labels[corev1.LabelHostname]; !ok {
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, corev1.LabelHostname, created.Name)
		if created, err = nodes.Patch(ctx, created.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return nil, fmt.Errorf("label node: %w", err)
		}
	}
	var ready *corev1.Node
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := nodes.Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = n
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("wait for node %s to be Ready: %w", created.Name, err)
	}
	return ready, nil
}

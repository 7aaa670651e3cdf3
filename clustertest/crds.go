package clustertest

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// crdFiles define kwok's Logs and ClusterLogs kinds, which kwok reads at
// run time to find pods' log files. Their schemas are left open.
//
//go:embed crds/*.yaml
var crdFiles embed.FS

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates kwok's CRDs and waits until they are established;
// kwok fails to start without them.
func installCRDs(ctx context.Context, dyn dynamic.Interface) error {
	names, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return fmt.Errorf("list CRDs: %w", err)
	}
	var crds []*unstructured.Unstructured
	for _, name := range names {
		data, err := crdFiles.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		crd := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			return fmt.Errorf("parse %s: %w", name, err)
		}
		crds = append(crds, crd)
	}
	return createCRDs(ctx, dyn, crds)
}

// createCRDs creates every CRD not there yet, then waits until all are
// established.
func createCRDs(ctx context.Context, dyn dynamic.Interface, crds []*unstructured.Unstructured) error {
	client := dyn.Resource(crdResource)
	for _, crd := range crds {
		if _, err := client.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			return crdEstablished(got), nil
		})
		if err != nil {
			return fmt.Errorf("wait for CRD %s: %w", crd.GetName(), err)
		}
	}
	return nil
}

func crdEstablished(crd *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

package clustertest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
)

// Kueue's visibility API (visibility.kueue.x-k8s.io: pending workloads and
// their positions) is an aggregated API, registered as Kueue's release
// manifests register it (config/components/visibility): the Service
// kueue-system/visibility-server on port 443 and an APIService per
// version. Three things differ, to keep every connection on loopback:
//   - The Service has no selector and one hand-made EndpointSlice, whose
//     address (192.0.2.1, a documentation address) is never dialled; the
//     aggregator needs a ready endpoint to call the API available.
//   - The API server reaches the Service's ClusterIP through the egress
//     proxy (see egress), which routes it to the visibility server's
//     loopback port.
//   - The APIServices trust the cluster CA (caBundle), which issued the
//     visibility server's certificate for the Service's DNS name, instead
//     of skipping TLS verification.

const (
	kueueVisibilityService = "visibility-server"
	kueueVisibilityHost    = kueueVisibilityService + "." + kueueNamespace + ".svc"
	kueueVisibilityGroup   = "visibility.kueue.x-k8s.io"
	kueueVisibilityAddress = "192.0.2.1"
)

// kueueVisibilityVersions are the versions Kueue serves, newest first.
var kueueVisibilityVersions = []string{"v1beta2", "v1beta1"}

var apiServiceResource = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// registerKueueVisibility makes the Service and its EndpointSlice, routes
// the Service's address to k's visibility port, registers the APIServices
// and waits until the API server calls every version available.
func (c *Cluster) registerKueueVisibility(ctx context.Context, k *kueueRun) error {
	clusterIP, err := c.applyVisibilityService(ctx, k.cfg.visibilityPort)
	if err != nil {
		return err
	}
	c.egress.route(net.JoinHostPort(clusterIP, "443"), net.JoinHostPort(loopback, strconv.Itoa(k.cfg.visibilityPort)))
	apiServices := c.dyn.Resource(apiServiceResource)
	for _, v := range kueueVisibilityVersions {
		obj := kueueAPIService(v, c.files.ca.certPEM)
		if _, err := apiServices.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create APIService %s: %w", obj.GetName(), err)
		}
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, c.opts.startTimeout(), true, func(ctx context.Context) (bool, error) {
		for _, v := range kueueVisibilityVersions {
			got, err := apiServices.Get(ctx, v+"."+kueueVisibilityGroup, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			if ok, why := apiServiceAvailable(got); !ok {
				last = got.GetName() + ": " + why
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("Kueue's visibility API is not available: %w (last: %s)", err, last)
	}
	return nil
}

// unregisterKueueVisibility deletes the APIServices, so that the stopped
// Kueue's API does not break the discovery of the cluster's controllers
// (the namespace and garbage collectors).
func (c *Cluster) unregisterKueueVisibility(ctx context.Context) error {
	for _, v := range kueueVisibilityVersions {
		err := c.dyn.Resource(apiServiceResource).Delete(ctx, v+"."+kueueVisibilityGroup, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete APIService %s.%s: %w", v, kueueVisibilityGroup, err)
		}
	}
	return nil
}

// applyVisibilityService creates the Service, or keeps the one a former
// Kueue made, and points its EndpointSlice at port; it returns the
// Service's ClusterIP.
func (c *Cluster) applyVisibilityService(ctx context.Context, port int) (string, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: kueueVisibilityService, Namespace: kueueNamespace},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(int32(port)),
		}}},
	}
	services := c.client.CoreV1().Services(kueueNamespace)
	got, err := services.Create(ctx, svc, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = services.Get(ctx, svc.Name, metav1.GetOptions{})
	}
	if err != nil {
		return "", fmt.Errorf("create Service %s/%s: %w", kueueNamespace, svc.Name, err)
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      kueueVisibilityService,
			Namespace: kueueNamespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: kueueVisibilityService,
				discoveryv1.LabelManagedBy:   "clustertest.kubeworker.io",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{kueueVisibilityAddress}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: new("https"), Port: new(int32(port)), Protocol: new(corev1.ProtocolTCP)}},
	}
	slices := c.client.DiscoveryV1().EndpointSlices(kueueNamespace)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		old, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		old.Endpoints, old.Ports = slice.Endpoints, slice.Ports
		_, err = slices.Update(ctx, old, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("apply EndpointSlice %s/%s: %w", kueueNamespace, slice.Name, err)
	}
	return got.Spec.ClusterIP, nil
}

// kueueAPIService is the APIService of one version of Kueue's visibility
// API.
func kueueAPIService(version string, caPEM []byte) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": version + "." + kueueVisibilityGroup},
		"spec": map[string]any{
			"group":                kueueVisibilityGroup,
			"version":              version,
			"groupPriorityMinimum": int64(100),
			"versionPriority":      int64(100),
			"caBundle":             base64.StdEncoding.EncodeToString(caPEM),
			"service":              map[string]any{"namespace": kueueNamespace, "name": kueueVisibilityService, "port": int64(443)},
		},
	}}
}

// apiServiceAvailable reports whether an APIService's Available condition
// is True, and if not, its message.
func apiServiceAvailable(obj *unstructured.Unstructured) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Available" {
			msg, _ := m["message"].(string)
			return m["status"] == "True", fmt.Sprint(m["reason"], ": ", msg)
		}
	}
	return false, "no Available condition yet"
}

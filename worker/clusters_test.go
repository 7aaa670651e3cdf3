package worker

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/kubeconfig"
)

func TestNewChecksClusters(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, c := range []struct {
		name string
		opts Options
		want string
	}{
		{"no name", Options{Clusters: []Cluster{{Config: cfg}}}, "Options.Clusters[0]: Name is required"},
		{"a name taken", Options{Clusters: []Cluster{{Name: "b", Config: cfg}, {Name: "b", Config: cfg}}}, `Options.Clusters[1]: Name "b" is taken`},
		{"the own cluster's name", Options{ClusterName: "a", Clusters: []Cluster{{Name: "a", Config: cfg}}}, `Options.Clusters[0]: Name "a" is taken`},
		{"a name that is no label value", Options{Clusters: []Cluster{{Name: "b c", Config: cfg}}}, "Options.Clusters[0]: Name"},
		{"neither config", Options{Clusters: []Cluster{{Name: "b"}}}, `Options.Clusters[0] ("b"): give Config or Kubeconfig`},
		{"both configs", Options{Clusters: []Cluster{{Name: "b", Config: cfg, Kubeconfig: []byte("x")}}}, `Options.Clusters[0] ("b"): give Config or Kubeconfig`},
		{"a bad kubeconfig", Options{Clusters: []Cluster{{Name: "b", Kubeconfig: []byte("clusters: [")}}}, `Options.Clusters[0] ("b"): kubeconfig`},
		{"a negative idle timeout", Options{RunClusters: RunClusters{IdleTimeout: -1}}, "IdleTimeout is negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(fake.NewClientset(), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New: %v; want an error containing %q", err, c.want)
			}
		})
	}
}

// TestRunRefusesItsClusterBeforeAnyRequest: a cluster_config the worker
// does not take fails the run before anything is sent anywhere.
func TestRunRefusesItsClusterBeforeAnyRequest(t *testing.T) {
	kc := map[string]any{
		"clusters": []any{map[string]any{"name": "b", "cluster": map[string]any{"server": "https://127.0.0.1:1"}}},
		"users": []any{map[string]any{"name": "u", "user": map[string]any{"exec": map[string]any{
			"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/sh"}}}},
		"contexts":        []any{map[string]any{"name": "b", "context": map[string]any{"cluster": "b", "user": "u"}}},
		"current-context": "b",
	}
	for _, c := range []struct {
		name   string
		opts   Options
		values map[string]any
		want   error
		text   string
	}{
		{"per-run clusters off", Options{}, map[string]any{"cluster_config": map[string]any{"config": kc}}, ErrRunClustersOff, "cluster_config"},
		{"an exec plugin", Options{RunClusters: RunClusters{Allow: true}}, map[string]any{"cluster_config": map[string]any{"config": kc}}, kubeconfig.ErrUntrusted, "exec"},
		{"a name of no cluster", Options{RunClusters: RunClusters{Allow: true}}, map[string]any{"cluster_config": map[string]any{"context_name": "gpu"}}, nil, `"gpu" names no cluster`},
		{"not an object", Options{RunClusters: RunClusters{Allow: true}}, map[string]any{"cluster_config": "b"}, nil, "cluster_config"},
		{"no clusters", Options{RunClusters: RunClusters{Allow: true}}, map[string]any{"cluster_config": map[string]any{"config": map[string]any{"users": []any{}}}}, nil, "clusters: none given"},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := fake.NewClientset()
			c.opts.Namespace = "ns"
			w, err := New(client, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(t.Context())
			_, err = w.Run(t.Context(), RunSpec{ID: "r", Values: c.values})
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.text) {
				t.Errorf("Run: %v; want %v, naming %q", err, c.want, c.text)
			}
			if n := len(client.Actions()); n != 0 {
				t.Errorf("%d requests sent, want none: %v", n, client.Actions())
			}
		})
	}
}

// TestKillAndAttachRefuseAPIDOfNoKnownCluster: the error names the UID
// and matches both ErrUnknownCluster and clusterid.ErrWrongCluster; no
// Job request is sent.
func TestKillAndAttachRefuseAPIDOfNoKnownCluster(t *testing.T) {
	client := fake.NewClientset()
	w, err := New(client, Options{Namespace: "ns", Parts: Parts{Identity: clusterid.New(client, clusterid.Options{UID: "here"})}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(t.Context())
	pid := clusterid.PID{ClusterUID: "elsewhere", Namespace: "ns", Name: "job-1"}
	_, aerr := w.Attach(t.Context(), pid, AttachOptions{})
	kerr := w.Kill(t.Context(), pid, 0)
	for name, err := range map[string]error{"Attach": aerr, "Kill": kerr} {
		var uc *UnknownClusterError
		var wc *clusterid.WrongClusterError
		if !errors.As(err, &uc) || !errors.Is(err, ErrUnknownCluster) || !errors.Is(err, clusterid.ErrWrongCluster) ||
			!errors.As(err, &wc) || wc.Want != "here" || !strings.Contains(err.Error(), `"elsewhere"`) {
			t.Errorf("%s: %v; want an *UnknownClusterError naming \"elsewhere\"", name, err)
		}
	}
	if n := len(client.Actions()); n != 0 {
		t.Errorf("%d requests sent, want none: %v", n, client.Actions())
	}
}

// TestARunKubeconfigNeverBorrowsAWrappedTransport: a cluster given with
// a transport wrapper (which may add credentials that no fingerprint
// sees) is not shared with a run whose kubeconfig connects the same way
// otherwise; the run connects on its own and its credentials alone.
func TestARunKubeconfigNeverBorrowsAWrappedTransport(t *testing.T) {
	var used atomic.Bool
	given := &rest.Config{Host: "https://127.0.0.1:1", WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) { used.Store(true); return rt.RoundTrip(r) })
	}}
	kc := map[string]any{
		"clusters":        []any{map[string]any{"name": "b", "cluster": map[string]any{"server": "https://127.0.0.1:1"}}},
		"users":           []any{map[string]any{"name": "u", "user": map[string]any{}}},
		"contexts":        []any{map[string]any{"name": "b", "context": map[string]any{"cluster": "b", "user": "u"}}},
		"current-context": "b",
	}
	w, err := New(fake.NewClientset(), Options{Namespace: "ns", Retry: jobtest.FastRetry,
		Clusters: []Cluster{{Name: "b", Config: given}}, RunClusters: RunClusters{Allow: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = w.Run(ctx, RunSpec{ID: "r", Values: map[string]any{"cluster_config": map[string]any{"config": kc}}})
	if err == nil || !strings.Contains(err.Error(), "read the cluster's UID") {
		t.Errorf("Run: %v; want its own connect to fail", err)
	}
	if used.Load() {
		t.Error("the run's request went through the given cluster's transport")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

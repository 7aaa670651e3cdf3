package benchsuite

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
)

// workloadsResource is Kueue's Workloads, in the version Kueue v0.17
// stores.
var workloadsResource = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "workloads"}

// kueueJobUIDLabel is the label Kueue puts on a Job's Workload: the
// Job's UID.
const kueueJobUIDLabel = "kueue.x-k8s.io/job-uid"

// admission is when the independent watch first saw a Workload's
// Admitted condition True, and which Job the Workload is of.
type admission struct {
	workload string
	// jobUID is the Workload's job-uid label; ownerUID the UID of its
	// owner reference to a Job, whose name keys the admissions.
	jobUID, ownerUID string
	at               time.Time
}

// admissionWatch is the independent, raw client-go watch of one
// namespace's Workloads that notes when each is admitted, by the local
// clock. It watches the whole cluster with a field selector on the
// namespace, so the API server counts its watch as no namespaced one,
// and goes on from the last resourceVersion after a cut (a
// RetryWatcher), counting the cuts.
type admissionWatch struct {
	mu      sync.Mutex
	byJob   map[string]admission // Job name → admission
	seen    map[string]bool      // Workload name → admitted
	cuts    int
	changed chan struct{}
}

// startAdmissionWatch starts the watch, on a client of its own (its own
// connection, not counted as the Worker's), and returns once it watches.
func startAdmissionWatch(ctx context.Context, kubeconfig, ns string) (*admissionWatch, error) {
	raw, err := os.ReadFile(kubeconfig)
	if err != nil {
		return nil, err
	}
	conf, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return nil, err
	}
	conf.QPS, conf.Burst = 1000, 2000
	dyn, err := dynamic.NewForConfig(conf)
	if err != nil {
		return nil, err
	}
	sel := fields.OneTermEqualSelector("metadata.namespace", ns).String()
	client := dyn.Resource(workloadsResource)
	list, err := client.List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list Workloads: %w", err)
	}
	a := &admissionWatch{byJob: map[string]admission{}, seen: map[string]bool{}, changed: make(chan struct{}, 1)}
	for i := range list.Items {
		a.observe(&list.Items[i], time.Now())
	}
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, list.GetResourceVersion(), &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = sel
			a.mu.Lock()
			a.cuts++
			a.mu.Unlock()
			return client.Watch(ctx, o)
		},
	})
	if err != nil {
		return nil, err
	}
	go func() {
		defer rw.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-rw.ResultChan():
				if !ok {
					return
				}
				if u, ok := e.Object.(*unstructured.Unstructured); ok && (e.Type == watch.Added || e.Type == watch.Modified) {
					a.observe(u, time.Now())
				}
			}
		}
	}()
	return a, nil
}

// observe notes wl's admission, at now, if it is admitted and was not
// seen admitted before.
func (a *admissionWatch) observe(wl *unstructured.Unstructured, now time.Time) {
	if !admitted(wl) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seen[wl.GetName()] {
		return
	}
	a.seen[wl.GetName()] = true
	ad := admission{workload: wl.GetName(), jobUID: wl.GetLabels()[kueueJobUIDLabel], at: now}
	for _, ref := range wl.GetOwnerReferences() {
		if ref.Kind == "Job" {
			ad.ownerUID = string(ref.UID)
			a.byJob[ref.Name] = ad
		}
	}
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

// admitted says whether wl's condition Admitted is True.
func admitted(wl *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == "Admitted" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// waitFor waits, up to timeout, until every Workload named has been seen
// admitted; the caller counts those still missing.
func (a *admissionWatch) waitFor(ctx context.Context, workloads []string, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		a.mu.Lock()
		missing := 0
		for _, wl := range workloads {
			if !a.seen[wl] {
				missing++
			}
		}
		a.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-a.changed:
		}
	}
}

// admissions returns the admissions seen, by Job name.
func (a *admissionWatch) admissions() map[string]admission {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.byJob
}

// reconnects is how many times the watch was opened again after a cut.
func (a *admissionWatch) reconnects() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return max(a.cuts-1, 0)
}

package clustertest

import (
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// The tests here disrupt the whole cluster, so they do not run in
// parallel; Go runs them before the parallel tests.

func TestCompactionMakesAnOldWatchGetGone(t *testing.T) {
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	maps := client.CoreV1().ConfigMaps(ns)
	cm, err := maps.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "old"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	oldRV := cm.ResourceVersion
	for _, v := range []string{"1", "2"} {
		cm.Data = map[string]string{"v": v}
		if cm, err = maps.Update(t.Context(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cluster.CompactEtcd(t.Context()); err != nil {
		t.Fatal(err)
	}
	w, err := maps.Watch(t.Context(), metav1.ListOptions{ResourceVersion: oldRV})
	if err != nil {
		t.Fatalf("watch from %s: %v", oldRV, err)
	}
	defer w.Stop()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("watch closed without an event")
		}
		if ev.Type != watch.Error {
			t.Fatalf("first event %s %T, want an ERROR event", ev.Type, ev.Object)
		}
		status := apierrors.FromObject(ev.Object)
		if !apierrors.IsResourceExpired(status) || status.(apierrors.APIStatus).Status().Code != http.StatusGone {
			t.Errorf("error event %v, want 410 Expired", status)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no event from a watch of a compacted resourceVersion")
	}
}

func TestRestartAPIServer(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
			w, err := client.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()
			begin := time.Now()
			if err := cluster.RestartAPIServer(t.Context(), sig); err != nil {
				t.Fatal(err)
			}
			t.Logf("restarted with %v in %s", sig, time.Since(begin).Round(time.Millisecond))
			waitClosed(t, w)
			// The same client works against the new server, and the
			// controllers and kwok still run Jobs.
			job := createJob(t, client, ns, newJob(nil))
			waitJobCondition(t, client, ns, job.Name, "Complete")
		})
	}
}

func TestProxyAnswers503UntilTheRestartedAPIServerIsReady(t *testing.T) {
	proxied := newClient(t, cluster.ProxyConfig()).Discovery().RESTClient()
	restarted := make(chan error, 1)
	go func() { restarted <- cluster.RestartAPIServer(t.Context(), syscall.SIGKILL) }()
	var seen503 bool
	for done := false; !done; {
		select {
		case err := <-restarted:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
			var code int
			proxied.Get().AbsPath("/version").MaxRetries(0).Do(t.Context()).StatusCode(&code)
			seen503 = seen503 || code == http.StatusServiceUnavailable
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !seen503 {
		t.Error("no 503 through the proxy while the API server restarted")
	}
	// Ready again: the proxy forwards.
	if err := proxied.Get().AbsPath("/version").Do(t.Context()).Error(); err != nil {
		t.Errorf("GET /version through the proxy after the restart: %v", err)
	}
}

func TestRestartAPIServerRefusesOtherSignals(t *testing.T) {
	if err := cluster.RestartAPIServer(t.Context(), syscall.SIGHUP); err == nil {
		t.Error("restart with SIGHUP: got no error")
	}
}

func TestRestartControllerManager(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
			cluster.mu.Lock()
			old := cluster.controllerManager
			cluster.mu.Unlock()
			// A Job created just before the restart: the old Job
			// controller may or may not create its pod, which finishes
			// about when the new one has started.
			before := createJob(t, client, ns, newJob(map[string]string{AnnotationDelay: "1s"}))
			begin := time.Now()
			if err := cluster.RestartControllerManager(t.Context(), sig); err != nil {
				t.Fatal(err)
			}
			t.Logf("restarted with %v in %s", sig, time.Since(begin).Round(time.Millisecond))
			if !old.exited() {
				t.Error("the old controller manager still runs after the restart")
			}
			cluster.mu.Lock()
			current, procs := cluster.controllerManager, slices.Clone(cluster.procs)
			cluster.mu.Unlock()
			if current == old || current.exited() {
				t.Fatal("no new controller manager running after the restart")
			}
			if slices.Contains(procs, old) || !slices.Contains(procs, current) {
				t.Error("the cluster still tracks the old controller manager, or not the new one")
			}
			after := createJob(t, client, ns, newJob(nil))
			waitJobCondition(t, client, ns, before.Name, batchv1.JobComplete)
			waitJobCondition(t, client, ns, after.Name, batchv1.JobComplete)
		})
	}
}

func TestRestartControllerManagerRefusesOtherSignals(t *testing.T) {
	if err := cluster.RestartControllerManager(t.Context(), syscall.SIGHUP); err == nil {
		t.Error("restart with SIGHUP: got no error")
	}
}

// waitClosed drains w until its channel closes.
func waitClosed(t *testing.T, w watch.Interface) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-w.ResultChan():
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch still open")
		}
	}
}

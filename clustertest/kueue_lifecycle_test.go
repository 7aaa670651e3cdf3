package clustertest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Not parallel: it stops the shared cluster's Kueue for a while.
func TestKueueStoppedRefusesOnlyQueuedJobs(t *testing.T) {
	startKueue(t)
	client, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	addQueue(t, QueueOptions{Namespace: ns, CPU: "1"})
	if err := cluster.StopKueue(); err != nil {
		t.Fatalf("stop Kueue: %v", err)
	}
	t.Cleanup(func() {
		if err := cluster.StartKueue(context.Background()); err != nil {
			t.Errorf("start Kueue again: %v", err)
		}
	})
	_, err := client.BatchV1().Jobs(ns).Create(t.Context(), queuedJob("queue", "1", nil), metav1.CreateOptions{})
	t.Logf("a queued Job while Kueue is stopped: %v", err)
	if err == nil || !strings.Contains(err.Error(), `failed calling webhook "mjob.kb.io"`) {
		t.Errorf("create a queued Job with Kueue stopped: %v, want failed calling webhook", err)
	}
	plain := createJob(t, client, ns, newJob(nil))
	waitJobCondition(t, client, ns, plain.Name, batchv1.JobComplete)

	begin := time.Now()
	startKueue(t)
	t.Logf("StartKueue after StopKueue took %s", time.Since(begin).Round(10*time.Millisecond))
	job := createJob(t, client, ns, queuedJob("queue", "1", nil))
	waitJobCondition(t, client, ns, job.Name, batchv1.JobComplete)
}

// Not parallel: it starts a second cluster.
func TestKueueStartsOnceAndStopsWithItsCluster(t *testing.T) {
	second, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatalf("start a second cluster: %v", err)
	}
	defer second.Stop()
	if err := second.AddQueue(t.Context(), QueueOptions{Namespace: "default"}); err == nil || !strings.Contains(err.Error(), "StartKueue") {
		t.Errorf("AddQueue before StartKueue: %v, want an error that says to call StartKueue", err)
	}
	begin := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = second.StartKueue(t.Context()) })
	}
	wg.Wait()
	t.Logf("StartKueue on a fresh cluster (CRDs, manager, webhooks), 3 callers at once: %s", time.Since(begin).Round(10*time.Millisecond))
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("start Kueue: %v", err)
	}
	second.mu.Lock()
	var kueues []int
	for _, p := range second.procs {
		if p.name == "kueue" {
			kueues = append(kueues, p.pid())
		}
	}
	second.mu.Unlock()
	if len(kueues) != 1 || !slices.Contains(second.PIDs(), kueues[0]) {
		t.Fatalf("kueue processes %v (running: %v), want one running", kueues, second.PIDs())
	}
	if _, err := os.Stat(filepath.Join(second.Dir(), "kueue.log")); err != nil {
		t.Errorf("kueue's log: %v", err)
	}
	hooks, err := second.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(t.Context(), "kueue-mutating-webhook-configuration", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hooks.Webhooks {
		names = append(names, h.Name)
	}
	t.Logf("mutating webhooks registered: %v", names)
	if err := second.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := syscall.Kill(-kueues[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kueue's process group %d still exists after Stop (kill 0: %v)", kueues[0], err)
	}
	if err := second.StartKueue(t.Context()); err == nil {
		t.Error("StartKueue after Stop succeeded")
	}
	if err := second.StopKueue(); err != nil {
		t.Errorf("StopKueue after Stop: %v", err)
	}
}

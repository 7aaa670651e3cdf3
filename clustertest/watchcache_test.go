package clustertest

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// With the watch cache on, compaction does not expire a recent
// resourceVersion: the API server replays the events from memory. This is
// why the watch cache is off by default.
func TestWatchCacheReplaysACompactedResourceVersion(t *testing.T) {
	cached, err := Start(t.Context(), Options{WatchCache: true})
	if err != nil {
		t.Fatalf("start a cluster with the watch cache on: %v", err)
	}
	defer func() {
		if err := cached.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	maps := newClient(t, cached.Config()).CoreV1().ConfigMaps("default")
	cm, err := maps.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cached"}}, metav1.CreateOptions{})
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
	if _, err := cached.CompactEtcd(t.Context()); err != nil {
		t.Fatal(err)
	}
	w, err := maps.Watch(t.Context(), metav1.ListOptions{ResourceVersion: oldRV})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Modified {
			t.Errorf("first event %s %v, want the replayed MODIFIED", ev.Type, ev.Object)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no event")
	}
}

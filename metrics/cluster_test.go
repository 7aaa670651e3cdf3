package metrics_test

import (
	"testing"

	"github.com/kubeworker/kubeworker/metrics"
)

// byCluster is a ClusterRecorder that remembers which cluster it was
// made for.
type byCluster struct {
	metrics.Discard
	cluster string
}

func (b *byCluster) ForCluster(cluster string) metrics.Recorder { return &byCluster{cluster: cluster} }

func TestForCluster(t *testing.T) {
	if got := metrics.ForCluster(nil, "east"); got != (metrics.Discard{}) {
		t.Errorf("ForCluster(nil) = %#v, want Discard{}", got)
	}
	if got := metrics.ForCluster(metrics.Discard{}, "east"); got != (metrics.Discard{}) {
		t.Errorf("ForCluster(Discard{}) = %#v, want Discard{}", got)
	}
	plain := &requestLog{}
	if got := metrics.ForCluster(plain, "east"); got != plain {
		t.Errorf("ForCluster of a Recorder without clusters = %#v, want it unchanged", got)
	}
	got, ok := metrics.ForCluster(&byCluster{}, "east").(*byCluster)
	if !ok || got.cluster != "east" {
		t.Errorf("ForCluster of a ClusterRecorder = %#v, want its ForCluster(\"east\")", got)
	}
}

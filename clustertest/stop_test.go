package clustertest

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestStopLeavesNoProcessOrDirectory(t *testing.T) {
	second, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatalf("start a second cluster: %v", err)
	}
	if second.Config().Host == cluster.Config().Host {
		t.Errorf("two clusters share %s", second.Config().Host)
	}
	second.mu.Lock()
	var pids []int
	for _, p := range second.procs {
		pids = append(pids, p.pid())
	}
	second.mu.Unlock()
	if len(pids) != 5 {
		t.Errorf("%d processes, want 5 (etcd, apiserver, controller manager, scheduler, kwok)", len(pids))
	}
	dir := second.Dir()
	if err := second.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	for _, pid := range pids {
		// Neither the process nor its group may remain.
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists after Stop (kill 0: %v)", pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still there after Stop: %v", dir, err)
	}
	if err := second.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := second.RestartAPIServer(t.Context(), syscall.SIGTERM); err == nil {
		t.Error("RestartAPIServer after Stop: got no error")
	}
	if err := second.RestartControllerManager(t.Context(), syscall.SIGTERM); err == nil {
		t.Error("RestartControllerManager after Stop: got no error")
	}
}

func TestFailedStartCleansUpAndSaysWhy(t *testing.T) {
	tmp := t.TempDir()
	bins := cluster.bins
	bins.KubeAPIServer = "/bin/false"
	_, err := start(t.Context(), Options{TempDir: tmp}, bins)
	if err == nil {
		t.Fatal("started with a broken API server")
	}
	if !strings.Contains(err.Error(), "kube-apiserver: exited") {
		t.Errorf("error %q does not name the failing component", err)
	}
	entries, _ := os.ReadDir(tmp)
	if len(entries) != 0 {
		t.Errorf("left %d entries in the temp dir after a failed start", len(entries))
	}
}

package clustertest

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func TestPinCPUsBindsEveryThreadOfTheControlPlaneAndUndoes(t *testing.T) {
	all := "0" // on one CPU the binding cannot be told from none
	if n := numCPU(); n > 1 {
		all = fmt.Sprintf("0-%d", n-1)
	}
	check := func(want string) {
		t.Helper()
		pids := cluster.PIDs()
		if len(pids) < 5 {
			t.Fatalf("%d control-plane processes, want etcd, API server, controllers, scheduler and kwok", len(pids))
		}
		for _, pid := range pids {
			threads, err := ThreadCPUs(pid)
			if err != nil {
				t.Fatal(err)
			}
			for tid, got := range threads {
				if got != want {
					t.Fatalf("thread %s of process %d may run on CPUs %s, want %s", tid, pid, got, want)
				}
			}
		}
	}
	if err := cluster.PinCPUs(0); err != nil {
		t.Fatal(err)
	}
	defer cluster.PinCPUs()
	check("0")
	if err := cluster.PinCPUs(); err != nil {
		t.Fatal(err)
	}
	check(all)
}

func TestCPUTimeGrowsWithWork(t *testing.T) {
	before, err := cluster.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	self, err := ProcessCPUTime(0)
	if err != nil || self <= 0 {
		t.Fatalf("this process's CPU time = %v, %v", self, err)
	}
	// Read by its own clock and from /proc, this process's time agrees
	// (within /proc's 10 ms ticks, and a little for the time between).
	if fromProc, err := ProcessCPUTime(os.Getpid()); err != nil || (self-fromProc).Abs() > 100*time.Millisecond {
		t.Errorf("this process's CPU time: %v by its clock, %v from /proc (%v)", self, fromProc, err)
	}
	for range 50 { // requests the API server and etcd serve
		cluster.NewNamespace(t)
	}
	after, err := cluster.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	if before <= 0 || after <= before {
		t.Errorf("control-plane CPU time %v before 50 namespaces, %v after; want it positive and growing", before, after)
	}
}

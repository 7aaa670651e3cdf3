package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// PinCPUs binds every thread of every control-plane process the cluster
// runs to cpus, so that a benchmark can keep its own work off them (see
// PinProcess); with no cpus it lets them run on every CPU again. An API
// server started later by RestartAPIServer is not bound. Linux only.
func (c *Cluster) PinCPUs(cpus ...int) error {
	for _, pid := range c.PIDs() {
		if err := PinProcess(pid, cpus...); err != nil {
			return err
		}
	}
	return nil
}

// CPUTime returns the CPU time (user and system) the cluster's running
// control-plane processes have used so far, from /proc. Linux only.
func (c *Cluster) CPUTime() (time.Duration, error) {
	var total time.Duration
	for _, pid := range c.PIDs() {
		d, err := ProcessCPUTime(pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

// PIDs returns the process IDs of the control-plane programs running now.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pids []int
	for _, p := range c.procs {
		if !p.exited() {
			pids = append(pids, p.pid())
		}
	}
	return pids
}

// PinProcess binds every thread of process pid (0: this process) to cpus;
// with no cpus, to every CPU the machine has. Threads the process starts
// later inherit the binding of the thread that starts them. Linux only.
func PinProcess(pid int, cpus ...int) error {
	var set unix.CPUSet
	if len(cpus) == 0 {
		for i := range numCPU() {
			set.Set(i)
		}
	}
	for _, cpu := range cpus {
		set.Set(cpu)
	}
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("pin process %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may end between the listing and now.
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d of process %d to CPUs %v: %w", tid, pid, cpus, err)
		}
	}
	return nil
}

// numCPU counts the machine's CPUs, not only those this process may use.
func numCPU() int {
	cpus, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*")
	return max(len(cpus), 1)
}

// ProcessCPUTime returns the CPU time (user and system, all threads)
// process pid has used so far: this process's to the nanosecond with pid
// 0 (CLOCK_PROCESS_CPUTIME_ID), another's from /proc/pid/stat in clock
// ticks of 10 ms. Linux only.
func ProcessCPUTime(pid int) (time.Duration, error) {
	if pid == 0 {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
			return 0, fmt.Errorf("clock_gettime(CLOCK_PROCESS_CPUTIME_ID): %w", err)
		}
		return time.Duration(ts.Nano()), nil
	}
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is field 3, utime 14 and stime 15 (proc(5)).
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command, want at least 13", path, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		ticks += n
	}
	// The kernel reports in clock ticks of USER_HZ, 100 on Linux.
	return time.Duration(ticks) * (time.Second / 100), nil
}

// ThreadCPUs returns, for each thread of process pid, the CPUs it may run
// on as /proc writes them ("0", "0-1"). Threads that end meanwhile are
// left out. Linux only.
func ThreadCPUs(pid int) (map[string]string, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(tasks))
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[t.Name()] = strings.TrimSpace(v)
			}
		}
	}
	return out, nil
}

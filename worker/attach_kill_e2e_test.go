package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// The worker process that TestAttachAfterTheWorkerProcessIsKilled kills
// is this test binary run again with killedWorkerEnv set to a directory.
// It must not start a test cluster of its own, and TestMain always does,
// so the child is caught in init, before TestMain runs.
const killedWorkerEnv = "KUBEWORKER_KILLED_WORKER_DIR"

func init() {
	if dir := os.Getenv(killedWorkerEnv); dir != "" {
		if err := killedWorker(dir); err != nil {
			fmt.Fprintln(os.Stderr, "killed worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// killedRun is one run of the killed worker: its fate, the lines its log
// has before the worker is killed and those added after, and how it must
// end.
type killedRun struct {
	id       string
	ann      map[string]string
	before   []string // in the pod's log from its start
	after    []string // appended once the worker is dead
	finishes bool     // ends while the worker lives
	running  bool     // runs until the test lets it finish
	deleted  bool     // its Job is deleted once the worker is dead
	pending  bool     // never starts
	outcome  jobwatch.Outcome
	exitCode int
}

var killedRuns = []killedRun{
	{id: "done-ok", before: []string{"d1", "d2"}, finishes: true, outcome: jobwatch.Succeeded},
	{id: "done-fail", ann: map[string]string{clustertest.AnnotationExitCode: "3"}, before: []string{"f1"}, finishes: true, outcome: jobwatch.Failed, exitCode: 3},
	{id: "run-ok", before: []string{"r1", "r2", "r3"}, after: []string{"r4", "r5"}, running: true, outcome: jobwatch.Succeeded},
	{id: "run-fail", ann: map[string]string{clustertest.AnnotationExitCode: "5"}, before: []string{"x1"}, after: []string{"x2", "x3"}, running: true, outcome: jobwatch.Failed, exitCode: 5},
	{id: "run-oom", ann: map[string]string{clustertest.AnnotationExitCode: "137", clustertest.AnnotationReason: "OOMKilled"}, before: []string{"o1"}, after: []string{"o2"}, running: true, outcome: jobwatch.OOMKilled, exitCode: 137},
	{id: "run-evicted", ann: map[string]string{clustertest.AnnotationEvict: "The node was low on resource: memory."}, before: []string{"e1"}, after: []string{"e2"}, running: true, outcome: jobwatch.Evicted, exitCode: 137},
	{id: "run-deleted", before: []string{"z1"}, running: true, deleted: true, outcome: jobwatch.Deleted, exitCode: -1},
	{id: "pending", ann: map[string]string{clustertest.AnnotationImagePull: "ErrImagePull"}, pending: true, outcome: jobwatch.ImagePullError, exitCode: -1},
}

// killedRecord is one line of the killed worker's state file: what a
// scheduler would store about a run.
type killedRecord struct {
	ID string `json:"id"`
	// PID is set once the Job exists.
	PID string `json:"pid,omitempty"`
	// LogSaved is when the last log line was saved, set after each line.
	LogSaved time.Time `json:"log_saved,omitzero"`
	// Ended, Outcome, ExitCode and LastLogTime are set when the run ends.
	Ended       bool      `json:"ended,omitempty"`
	Outcome     string    `json:"outcome,omitempty"`
	ExitCode    int       `json:"exit_code,omitempty"`
	LastLogTime time.Time `json:"last_log_time,omitzero"`
}

// killedWorker is the child: it starts every killed run through one
// Worker, saves each log line to <dir>/<id>.log and what it learns to
// <dir>/state.jsonl, and runs until it is killed.
func killedWorker(dir string) error {
	conf, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		return err
	}
	w, err := New(client, Options{Name: "killed", Namespace: os.Getenv("KUBEWORKER_KILLED_WORKER_NS"), Template: jobtest.FateTemplate()})
	if err != nil {
		return err
	}
	state, err := os.OpenFile(filepath.Join(dir, "state.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	save := func(r killedRecord) {
		line, _ := json.Marshal(r)
		mu.Lock()
		defer mu.Unlock()
		state.Write(append(line, '\n')) // one write: whole lines survive a SIGKILL
	}
	var wg sync.WaitGroup
	for _, kr := range killedRuns {
		f, err := os.OpenFile(filepath.Join(dir, kr.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		ann := map[string]string{clustertest.AnnotationLog: strings.Join(kr.before, "\n")}
		for k, v := range kr.ann {
			ann[k] = v
		}
		if kr.running {
			ann[clustertest.AnnotationDelay] = "1h"
		}
		wg.Go(func() {
			res, err := w.Run(context.Background(), RunSpec{
				ID: kr.id, Values: fate(ann),
				Logs:    savedLog{f: f, saved: func(at time.Time) { save(killedRecord{ID: kr.id, LogSaved: at}) }},
				Started: func(pid clusterid.PID) { save(killedRecord{ID: kr.id, PID: pid.String()}) },
			})
			if err != nil {
				fmt.Fprintf(os.Stderr, "run %s: %v\n", kr.id, err)
				return
			}
			save(killedRecord{ID: kr.id, Ended: true, Outcome: res.Outcome.String(), ExitCode: res.ExitCode, LastLogTime: res.LastLogTime})
		})
	}
	wg.Wait() // the test kills the process before the running runs end
	return errors.New("every run ended before the worker was killed")
}

// savedLog writes each log line to a file and then notes when it was
// saved: a line timestamped before that time is on disk.
type savedLog struct {
	f     *os.File
	saved func(time.Time)
}

func (l savedLog) Write(p []byte) (int, error) {
	n, err := l.f.Write(p)
	if err == nil {
		l.saved(time.Now())
	}
	return n, err
}

// TestAttachAfterTheWorkerProcessIsKilled runs a worker in a child
// process, SIGKILLs it while runs are under way (two finished, five
// running, one pending), changes the runs while no worker follows them
// (more log lines, pods finishing, a Job deleted), and then attaches a new
// Worker to every run by the PID the child saved, continuing each log from
// the time the child saved it. Every outcome and exit code must be right,
// and each run's saved log must hold every line exactly once.
//
// What the child saves for a running run's log is the wall time after its
// last line was written: jobwatch hands the Logs writer lines without
// their timestamps. That is exact here because the test adds the later
// lines only after the kill, so no line is in flight when the child dies.
func TestAttachAfterTheWorkerProcessIsKilled(t *testing.T) {
	ns := cluster.NewNamespace(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killedWorkerEnv+"="+dir, "KUBEWORKER_KILLED_WORKER_NS="+ns, "KUBECONFIG="+cluster.Kubeconfig())
	cmd.Stderr = testLog{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })

	// Wait until the child has every PID, the finished runs' results and
	// every line there is so far; then kill it.
	var state map[string]killedRecord
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, e2eTimeout, true, func(context.Context) (bool, error) {
		select {
		case <-exited:
			return false, fmt.Errorf("the worker process exited: %v", waitErr)
		default:
		}
		state = readKilledState(t, dir)
		for _, kr := range killedRuns {
			s := state[kr.id]
			if s.PID == "" || (kr.finishes && !s.Ended) || readLog(t, dir, kr.id) != lines(kr.before) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the worker process did not get under way: %v", err)
	}
	pods := map[string]*corev1.Pod{}
	for _, kr := range killedRuns {
		if kr.running {
			pid := mustParsePID(t, state[kr.id].PID)
			pods[kr.id] = podOfJob(t, pid, "running", podRunning)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	if waitErr == nil || !strings.Contains(waitErr.Error(), "killed") {
		t.Fatalf("the worker process ended with %v, want killed", waitErr)
	}
	state = readKilledState(t, dir)

	// While nobody follows them: the running runs log more and finish,
	// and one Job is deleted.
	client := adminClient(t)
	for _, kr := range killedRuns {
		pid := mustParsePID(t, state[kr.id].PID)
		switch {
		case kr.deleted:
			if err := client.BatchV1().Jobs(ns).Delete(t.Context(), pid.Name, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}); err != nil {
				t.Fatal(err)
			}
		case kr.running:
			if len(kr.after) > 0 {
				if err := cluster.AppendPodLog(ns, pods[kr.id].Name, "run", kr.after...); err != nil {
					t.Fatal(err)
				}
			}
			setPodDelay(t, pods[kr.id], "0s")
		}
	}

	// A new Worker, as a restarted scheduler would make it, attaches to
	// every run by its saved PID.
	w := fateWorker(t, client, ns, "killed", Options{})
	var wg sync.WaitGroup
	results := make([]Result, len(killedRuns))
	errs := make([]error, len(killedRuns))
	for i, kr := range killedRuns {
		s := state[kr.id]
		f, err := os.OpenFile(filepath.Join(dir, kr.id+".log"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		opts := AttachOptions{Logs: f, LogsSince: s.LogSaved}
		if s.Ended {
			opts.LogsSince = s.LastLogTime
		}
		if kr.pending {
			opts.Values = map[string]any{"pod_watch_timeout_seconds": 3}
		}
		pid := mustParsePID(t, s.PID)
		wg.Go(func() { results[i], errs[i] = w.Attach(t.Context(), pid, opts) })
	}
	wg.Wait()

	for i, kr := range killedRuns {
		res, err := results[i], errs[i]
		if err != nil {
			t.Errorf("run %s: %v", kr.id, err)
			continue
		}
		if res.Outcome != kr.outcome || res.ExitCode != kr.exitCode || res.RunID != kr.id {
			t.Errorf("run %s: %s, exit code %d (%s); want %s, %d", kr.id, res.Outcome, res.ExitCode, res.Reason, kr.outcome, kr.exitCode)
		}
		if s := state[kr.id]; s.Ended && (s.Outcome != kr.outcome.String() || s.ExitCode != kr.exitCode) {
			t.Errorf("run %s ended in the killed worker as %s %d; want %s %d", kr.id, s.Outcome, s.ExitCode, kr.outcome, kr.exitCode)
		}
		want := lines(append(append([]string(nil), kr.before...), kr.after...))
		if got := readLog(t, dir, kr.id); got != want {
			t.Errorf("run %s: the saved log is %q, want %q: each line exactly once", kr.id, got, want)
		}
	}
}

func lines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}

func readLog(t *testing.T, dir, id string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, id+".log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

// readKilledState folds the child's state file into one record per run.
func readKilledState(t *testing.T, dir string) map[string]killedRecord {
	t.Helper()
	state := map[string]killedRecord{}
	f, err := os.Open(filepath.Join(dir, "state.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return state
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r killedRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line cut by the kill
		}
		s := state[r.ID]
		s.ID = r.ID
		if r.PID != "" {
			s.PID = r.PID
		}
		if !r.LogSaved.IsZero() {
			s.LogSaved = r.LogSaved
		}
		if r.Ended {
			s.Ended, s.Outcome, s.ExitCode, s.LastLogTime = true, r.Outcome, r.ExitCode, r.LastLogTime
		}
		state[r.ID] = s
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return state
}

func mustParsePID(t *testing.T, s string) clusterid.PID {
	t.Helper()
	pid, err := clusterid.ParsePID(s)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// testLog writes a child's standard error to the test log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("child: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

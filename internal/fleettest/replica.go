// Package fleettest runs fleet replicas of a worker as separate processes
// of the test binary, for the tests and measurements of worker.Fleet: a
// parent starts each Replica (the binary again, in replica mode), hands it
// runs, and reads what it says on stdout, a JSON line per event; it can
// stop it (SIGTERM, a clean Close) or kill it (SIGKILL).
//
// A test binary that uses it calls ReplicaMain first in its TestMain.
package fleettest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"go.uber.org/goleak"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/worker"
)

// EnvReplica, set in a test binary's environment, makes ReplicaMain run a
// replica instead of the tests.
const EnvReplica = "KUBEWORKER_FLEETTEST_REPLICA"

// Params configure a replica process.
type Params struct {
	// Kubeconfig, if set, is the path of a kubeconfig to reach the API
	// server with; else Host, Token and CA reach it (the fault proxy, say).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Host, Token (or Cert and Key) and CA reach the API server without
	// a Kubeconfig.
	Host  string `json:"host"`
	Token string `json:"token"`
	CA    []byte `json:"ca"`
	Cert  []byte `json:"cert,omitempty"`
	Key   []byte `json:"key,omitempty"`
	// Impersonate, if set, is the user the replica's requests act as.
	Impersonate string `json:"impersonate,omitempty"`
	// Namespace holds the Jobs and the Leases.
	Namespace string `json:"namespace"`
	// Identity names the replica; it is also its client's user agent, so
	// the fault proxy can single it out.
	Identity string `json:"identity"`
	// LeaseDuration, RenewDeadline, RetryPeriod and Resync time the fleet.
	LeaseDuration time.Duration `json:"leaseDuration"`
	RenewDeadline time.Duration `json:"renewDeadline"`
	RetryPeriod   time.Duration `json:"retryPeriod"`
	Resync        time.Duration `json:"resync"`
	// QPS and Burst of the replica's client; zero: client-go's defaults.
	QPS   float32 `json:"qps"`
	Burst int     `json:"burst"`
	// Solo makes the process a lone Worker, in no fleet: it says
	// "started" with each run's PID, and a process started after it
	// follows its runs on with Run.Attach.
	Solo bool `json:"solo,omitempty"`
	// Name is the Worker's Name. Default: "fleet", or "solo" for Solo.
	Name string `json:"name,omitempty"`
}

// Run is a run handed to a replica; or, with Cancel set, a CancelRun of
// the run ID with that reason (Force, ForceAfter 1 s); or, with Attach
// set, an Attach of that PID with the log from after Since.
type Run struct {
	ID     string         `json:"id"`
	Values map[string]any `json:"values,omitempty"`
	Cancel string         `json:"cancel,omitempty"`
	Attach string         `json:"attach,omitempty"`
	Since  time.Time      `json:"since,omitzero"`
}

// Event is a line a replica writes.
type Event struct {
	// Kind is "joined", "lost" (the replica lost its Lease), "started"
	// (a lone Worker's Job exists; PID says which), "result",
	// "run-error", "log", "event", "takeover",
	// "cancelled" (a CancelRun returned nil), "leaked" (goroutines
	// outlived the Worker's Close; Err lists them) or "closed".
	Kind    string `json:"kind"`
	Replica string `json:"replica"`
	Run     string `json:"run,omitempty"`
	// Outcome, ExitCode and PID of a "result"; PID of a "started".
	Outcome  string `json:"outcome,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
	PID      string `json:"pid,omitempty"`
	// Line of a "log"; Err of a "run-error"; for an "event", its ID and
	// what happened (phase and reason).
	Line    string `json:"line,omitempty"`
	EventID string `json:"eventID,omitempty"`
	// Stamp is a log line's timestamp.
	Stamp time.Time `json:"stamp,omitzero"`
	Err   string    `json:"err,omitempty"`
	// At is when the replica wrote it.
	At time.Time `json:"at"`
}

// ReplicaMain runs a replica and exits when EnvReplica is set; else it
// returns at once.
func ReplicaMain() {
	if os.Getenv(EnvReplica) == "" {
		return
	}
	if err := replicaMain(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// out writes Events, one JSON line each.
type out struct {
	mu      sync.Mutex
	w       io.Writer
	replica string
}

func (o *out) emit(e Event) {
	e.Replica, e.At = o.replica, time.Now()
	data, _ := json.Marshal(e)
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, "%s\n", data)
}

// lineWriter turns a run's log into "log" Events, a line each.
type lineWriter struct {
	o    *out
	run  string
	mu   sync.Mutex
	part []byte
}

// WriteLine makes lineWriter a jobwatch.TimedWriter: each line's
// timestamp goes with it.
func (l *lineWriter) WriteLine(ts time.Time, line []byte) error {
	l.o.emit(Event{Kind: "log", Run: l.run, Line: strings.TrimSuffix(string(line), "\n"), Stamp: ts})
	return nil
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.part = append(l.part, p...)
	for {
		i := indexByte(l.part, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.o.emit(Event{Kind: "log", Run: l.run, Line: string(l.part[:i])})
		l.part = l.part[i+1:]
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// sink is the replica's Fleet.Sink: it writes each Result as an Event,
// and gives the logs of runs taken over to "log" Events, whole.
type sink struct{ o *out }

func (s sink) Record(_ context.Context, res worker.Result) error {
	s.o.emit(Event{Kind: "result", Run: res.RunID, Outcome: res.Outcome.String(), ExitCode: res.ExitCode, PID: res.PID.String()})
	return nil
}

func (s sink) RunLog(runID string) (io.Writer, time.Time) {
	return &lineWriter{o: s.o, run: runID}, time.Time{}
}

func (s sink) RunEvents(runID string) jobwatch.EventSink { return s.o.events(runID) }

// events writes a run's events as "event" Events.
func (o *out) events(runID string) jobwatch.EventSink {
	return jobwatch.EventFunc(func(e jobwatch.Event) {
		o.emit(Event{Kind: "event", Run: runID, EventID: e.ID, Line: string(e.Phase) + " " + e.Reason})
	})
}

// takeovers reports the worker's "took the run over" and "joined the
// fleet" log records as Events, and drops the rest.
type takeovers struct{ o *out }

func (h takeovers) Enabled(context.Context, slog.Level) bool { return true }
func (h takeovers) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h takeovers) WithGroup(string) slog.Handler            { return h }
func (h takeovers) Handle(_ context.Context, r slog.Record) error {
	kind := map[string]string{"took the run over": "takeover", "joined the fleet": "joined",
		"lost the fleet's Lease: its runs are left to the others": "lost"}[r.Message]
	if kind == "" {
		return nil
	}
	var run string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "run" {
			run = a.Value.String()
		}
		return true
	})
	h.o.emit(Event{Kind: kind, Run: run})
	return nil
}

func replicaMain(stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	var p Params
	if err := json.Unmarshal(line, &p); err != nil {
		return fmt.Errorf("read params: %w", err)
	}
	o := &out{w: stdout, replica: p.Identity}
	cfg := &rest.Config{Host: p.Host, BearerToken: p.Token}
	cfg.CAData, cfg.CertData, cfg.KeyData = p.CA, p.Cert, p.Key
	if p.Kubeconfig != "" {
		if cfg, err = clientcmd.BuildConfigFromFlags("", p.Kubeconfig); err != nil {
			return err
		}
	}
	cfg.UserAgent, cfg.QPS, cfg.Burst = p.Identity, p.QPS, p.Burst
	cfg.Impersonate.UserName = p.Impersonate
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	runs := make(chan Run)
	go func() {
		defer close(runs)
		for {
			line, err := in.ReadBytes('\n')
			if err != nil {
				return
			}
			var r Run
			if json.Unmarshal(line, &r) == nil {
				runs <- r
			}
		}
	}()
	// What runs now is the harness's; what the Worker starts must end
	// with its Close.
	before := goleak.IgnoreCurrent()
	s := sink{o}
	opts := worker.Options{
		Name: "fleet", Namespace: p.Namespace, Template: jobtest.FateTemplate(), RetainUntilRecorded: true,
		Logger: slog.New(takeovers{o}),
		Fleet: worker.Fleet{
			Enabled: true, Sink: s, Identity: p.Identity,
			LeaseDuration: p.LeaseDuration, RenewDeadline: p.RenewDeadline, RetryPeriod: p.RetryPeriod, Resync: p.Resync,
		},
	}
	if p.Solo {
		opts.Name, opts.Fleet = "solo", worker.Fleet{}
		// A lone Worker says nothing of fleets; it joins nothing.
		o.emit(Event{Kind: "joined"})
	}
	if p.Name != "" {
		opts.Name = p.Name
	}
	w, err := worker.New(client, opts)
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return errors.Join(err, w.Close(context.Background()))
	}
	record := func(res worker.Result) error {
		if p.Solo {
			s.Record(context.Background(), res)
		}
		return nil
	}
	var wg sync.WaitGroup
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case r, ok := <-runs:
			if !ok {
				break loop
			}
			switch {
			case r.Cancel != "":
				wg.Go(func() {
					err := w.CancelRun(context.Background(), r.ID, r.Cancel, worker.CancelOptions{Force: true, ForceAfter: time.Second})
					if err != nil {
						o.emit(Event{Kind: "run-error", Run: r.ID, Err: err.Error()})
						return
					}
					o.emit(Event{Kind: "cancelled", Run: r.ID})
				})
			case r.Attach != "":
				wg.Go(func() {
					pid, err := clusterid.ParsePID(r.Attach)
					if err == nil {
						_, err = w.Attach(context.Background(), pid, worker.AttachOptions{
							Values: r.Values, Logs: &lineWriter{o: o, run: r.ID}, LogsSince: r.Since, Events: o.events(r.ID), OnResult: record,
						})
					}
					if err != nil {
						o.emit(Event{Kind: "run-error", Run: r.ID, Err: err.Error()})
					}
				})
			default:
				wg.Go(func() {
					_, err := w.Run(context.Background(), worker.RunSpec{
						ID: r.ID, Values: r.Values, Logs: &lineWriter{o: o, run: r.ID}, Events: o.events(r.ID), OnResult: record,
						Started: func(pid clusterid.PID) { o.emit(Event{Kind: "started", Run: r.ID, PID: pid.String()}) },
					})
					if err != nil {
						o.emit(Event{Kind: "run-error", Run: r.ID, Err: err.Error()})
					}
				})
			}
		}
	}
	err = w.Close(context.Background())
	wg.Wait()
	if leak := goleak.Find(append(httpConnections, before)...); leak != nil {
		o.emit(Event{Kind: "leaked", Err: leak.Error()})
	}
	o.emit(Event{Kind: "closed"})
	return err
}

// httpConnections are the goroutines of pooled HTTP connections: client-go's
// transport cache keeps them past any one client, so they are not the
// Worker's.
var httpConnections = []goleak.Option{
	goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
	goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
	goleak.IgnoreAnyFunction("net/http.(*http2ClientConn).readLoop"),
}

// Replica is a replica process, seen from its parent.
type Replica struct {
	Identity string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	mu       sync.Mutex
	exited   chan struct{}
}

// Start starts a replica with p, whose Events go to events (from one
// goroutine per replica, in the order written) until it exits. It returns
// once the replica has joined its fleet.
func Start(ctx context.Context, p Params, events chan<- Event, stderr io.Writer) (*Replica, error) {
	params, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), EnvReplica+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start replica %s: %w", p.Identity, err)
	}
	r := &Replica{Identity: p.Identity, cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	joined := make(chan struct{})
	go func() {
		defer close(r.exited)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		first := true
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue
			}
			if first && e.Kind == "joined" {
				first = false
				close(joined)
			}
			events <- e
		}
		cmd.Wait()
	}()
	if _, err := stdin.Write(append(params, '\n')); err != nil {
		r.Kill()
		return nil, err
	}
	select {
	case <-joined:
		return r, nil
	case <-r.exited:
		return nil, fmt.Errorf("replica %s exited before joining its fleet: %v", p.Identity, cmd.ProcessState)
	case <-ctx.Done():
		r.Kill()
		return nil, fmt.Errorf("replica %s did not join its fleet: %w", p.Identity, ctx.Err())
	}
}

// Send hands the replica a run.
func (r *Replica) Send(run Run) error {
	data, err := json.Marshal(run)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err = r.stdin.Write(append(data, '\n'))
	return err
}

// Kill kills the replica (SIGKILL) and waits for it to exit.
func (r *Replica) Kill() {
	r.cmd.Process.Kill()
	<-r.exited
}

// Stop stops the replica with SIGTERM (it closes its Worker, giving its
// Lease up) and waits for it to exit.
func (r *Replica) Stop() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	<-r.exited
}

// Exited is closed once the replica has exited and its Events are read.
func (r *Replica) Exited() <-chan struct{} { return r.exited }

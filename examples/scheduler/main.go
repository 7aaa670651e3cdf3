// Command scheduler is a small custom scheduler built on kubeworker: it
// takes runs from a queue directory (one YAML file per run), runs several
// at once through a Worker and its Agent, and prints each Result. While it
// runs it serves, on -listen, the Agent's /healthz and /readyz (ready once
// the shared watch streams are synced) and /metrics: kubeworker's metrics
// (package metrics/prom) in the Prometheus format, API requests counted by
// the client's transport included.
//
//	go run ./examples/scheduler                      # sample queue, local cluster
//	go run ./examples/scheduler -queue ./runs -kubeconfig ~/.kube/config
//	curl 127.0.0.1:8080/metrics                      # while it runs
//
// A run file:
//
//	id: nightly-1
//	name: nightly etl
//	values:
//	  image: docker.io/library/busybox:stable
//	  command: echo hello
//	  pod_annotations: {test.kubeworker.io/exit-code: "3"}   # local cluster fates
//
// The template is the default one plus a pod_annotations variable, made in
// Go: see podAnnotationsTemplate.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/agent"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics/prom"
	"github.com/kubeworker/kubeworker/worker"
)

func main() {
	queue := flag.String("queue", "", "directory of run files; default: a sample queue")
	kubeconfigPath := flag.String("kubeconfig", "", "kubeconfig of a real cluster; default: start the local one")
	kubeContext := flag.String("context", "", "kubeconfig context")
	concurrency := flag.Int("concurrency", 3, "runs at once")
	listen := flag.String("listen", "127.0.0.1:8080", "address serving /metrics, /healthz and /readyz")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := mainErr(ctx, *queue, *kubeconfigPath, *kubeContext, *concurrency, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, queue, kubeconfigPath, kubeContext string, concurrency int, listen string) error {
	if queue == "" {
		dir, err := os.MkdirTemp("", "kubeworker-queue-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if err := writeSampleQueue(dir); err != nil {
			return err
		}
		queue = dir
	}
	conn := kubeconfig.Options{Context: kubeContext}
	if kubeconfigPath == "" {
		c, err := clustertest.Start(ctx, clustertest.Options{Progress: os.Stderr})
		if err != nil {
			return err
		}
		defer c.Stop()
		kubeconfigPath, conn.Context = c.Kubeconfig(), ""
	}
	data, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		return err
	}
	conn.Kubeconfig = data
	s, err := newScheduler(conn, queue, "default", concurrency, os.Stdout)
	if err != nil {
		return err
	}
	defer s.close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "scheduler: serving /metrics, /healthz and /readyz on http://%s\n", ln.Addr())
	_, err = s.run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(err, srv.Shutdown(shutdown), ignoreClosed(<-served))
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// runFile is one queued run.
type runFile struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Values map[string]any `json:"values"`
}

// scheduler is a Worker and its Agent, with the registry of their
// metrics.
type scheduler struct {
	w     *worker.Worker
	agent *agent.Agent
	reg   *prometheus.Registry
	queue string
	out   io.Writer

	cancel context.CancelFunc // ends Serve once the queue is done; set by run

	mu      sync.Mutex
	total   int
	results map[string]worker.Result
	errs    []error
}

// newScheduler returns a scheduler of runs from queue, concurrency at a
// time in namespace, through a client loaded from conn whose requests it
// counts. Close it when done.
func newScheduler(conn kubeconfig.Options, queue, namespace string, concurrency int, out io.Writer) (*scheduler, error) {
	s := &scheduler{reg: prometheus.NewRegistry(), queue: queue, out: out, results: map[string]worker.Result{}}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rec, err := prom.New(s.reg)
	if err != nil {
		return nil, err
	}
	// Load wraps the client's transport once, with metrics.WrapTransport:
	// it counts every API request in rec, and each run's in its Result.
	conn.Metrics = rec
	cfg, err := kubeconfig.Load(conn)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	s.w, err = worker.New(client, worker.Options{
		Name: "scheduler", Namespace: namespace, Template: podAnnotationsTemplate(),
		Metrics: rec,
	})
	if err != nil {
		return nil, err
	}
	s.agent = agent.New(s.w, dirSource(queue), agent.Options{Concurrency: concurrency, Report: s.report})
	return s, nil
}

// handler serves /metrics and the Agent's /healthz and /readyz.
func (s *scheduler) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.Handle("/", s.agent.HealthHandler(nil))
	return mux
}

// run takes every run in the queue, prints each Result and returns them
// by run ID.
func (s *scheduler) run(ctx context.Context) (map[string]worker.Result, error) {
	total, err := countRuns(s.queue)
	if err != nil {
		return nil, err
	}
	if total == 0 {
		return map[string]worker.Result{}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.total, s.cancel = total, cancel
	s.mu.Unlock()
	if err := s.agent.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return s.done(), err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results, errors.Join(s.errs...)
}

func (s *scheduler) done() map[string]worker.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results
}

// report prints how a run ended and stops the Agent after the last one.
func (s *scheduler) report(r worker.Run, res worker.Result, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		fmt.Fprintf(s.out, "%-12s error: %v\n", r.ID, err)
		s.errs = append(s.errs, err)
	} else {
		fmt.Fprintf(s.out, "%-12s %-10s exit %3d  %s\n", r.ID, res.Outcome, res.ExitCode, res.PID)
		s.results[r.ID] = res
	}
	if len(s.results)+len(s.errs) == s.total {
		s.cancel() // the queue is done
	}
}

// close closes the Worker.
func (s *scheduler) close() { s.w.Close(context.Background()) }

// run takes every run in queue, runs them concurrency at a time in
// namespace through a client loaded from conn, prints each Result to out
// and returns them by run ID.
func run(ctx context.Context, conn kubeconfig.Options, queue, namespace string, concurrency int, out io.Writer) (map[string]worker.Result, error) {
	s, err := newScheduler(conn, queue, namespace, concurrency, out)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return s.run(ctx)
}

// dirSource takes the oldest *.yaml file of dir, claiming it by renaming it
// to *.taken so that two schedulers never take one run.
func dirSource(dir string) agent.Source {
	return agent.SourceFunc(func(ctx context.Context) (worker.Run, bool, error) {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			return worker.RunSpec{}, false, err
		}
		sort.Strings(files)
		taken := strings.TrimSuffix(files[0], ".yaml") + ".taken"
		if err := os.Rename(files[0], taken); err != nil {
			return worker.RunSpec{}, false, nil // another scheduler took it
		}
		data, err := os.ReadFile(taken)
		if err != nil {
			return worker.RunSpec{}, false, err
		}
		var rf runFile
		if err := yaml.UnmarshalStrict(data, &rf); err != nil {
			return worker.RunSpec{}, false, fmt.Errorf("%s: %w", taken, err)
		}
		return worker.RunSpec{ID: rf.ID, Name: rf.Name, Values: rf.Values}, true, nil
	})
}

func countRuns(dir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	return len(files), err
}

// podAnnotationsTemplate is the default template plus a pod_annotations
// variable on the pod template: a template built in Go.
func podAnnotationsTemplate() *manifest.Template {
	t := manifest.Default()
	spec := t.JobConfiguration["job_manifest"].(map[string]any)["spec"].(map[string]any)
	tmpl := spec["template"].(map[string]any)
	tmpl["metadata"] = map[string]any{"annotations": "{{ pod_annotations }}"}
	t.Variables.Properties["pod_annotations"] = &manifest.Property{
		Type: manifest.Types{"object"}, Description: "Annotations of the Job's pods.",
		Default: map[string]any{}, HasDefault: true,
	}
	return t
}

func writeSampleQueue(dir string) error {
	samples := map[string]string{
		"01-hello.yaml":   "id: hello\nname: hello\nvalues: {pod_annotations: {test.kubeworker.io/log: \"hello\"}}\n",
		"02-fails.yaml":   "id: fails\nname: fails\nvalues: {pod_annotations: {test.kubeworker.io/exit-code: \"3\"}}\n",
		"03-oom.yaml":     "id: oom\nname: oom\nvalues: {pod_annotations: {test.kubeworker.io/exit-code: \"137\", test.kubeworker.io/reason: OOMKilled}}\n",
		"04-slow.yaml":    "id: slow\nname: slow\nvalues: {pod_annotations: {test.kubeworker.io/delay: \"2s\"}}\n",
		"05-evicted.yaml": "id: evicted\nname: evicted\nvalues: {pod_annotations: {test.kubeworker.io/evict: \"The node was low on memory.\"}}\n",
	}
	for name, body := range samples {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

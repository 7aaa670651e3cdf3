// Command scheduler is a small custom scheduler built on kubeworker: it
// takes runs from a queue directory (one YAML file per run), runs several
// at once through a Worker and its Agent, and prints each Result.
//
//	go run ./examples/scheduler                      # sample queue, local cluster
//	go run ./examples/scheduler -queue ./runs -kubeconfig ~/.kube/config
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
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kubeworker/kubeworker/internal/testcluster"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

func main() {
	queue := flag.String("queue", "", "directory of run files; default: a sample queue")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of a real cluster; default: start the local one")
	kubeContext := flag.String("context", "", "kubeconfig context")
	concurrency := flag.Int("concurrency", 3, "runs at once")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := mainErr(ctx, *queue, *kubeconfig, *kubeContext, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, queue, kubeconfig, kubeContext string, concurrency int) error {
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
	var cfg *rest.Config
	if kubeconfig == "" {
		c, err := testcluster.Start(ctx, testcluster.Options{Progress: os.Stderr})
		if err != nil {
			return err
		}
		defer c.Stop()
		cfg = c.Config()
	} else {
		data, err := os.ReadFile(kubeconfig)
		if err != nil {
			return err
		}
		if cfg, err = worker.Config(worker.ConfigOptions{Kubeconfig: data, Context: kubeContext}); err != nil {
			return err
		}
	}
	_, err := run(ctx, cfg, queue, "default", concurrency, os.Stdout)
	return err
}

// runFile is one queued run.
type runFile struct {
	ID     string         `json:"id"`
	Name   string         `json:"name"`
	Values map[string]any `json:"values"`
}

// run takes every run in queue, runs them concurrency at a time in
// namespace, prints each Result to out and returns them by run ID.
func run(ctx context.Context, cfg *rest.Config, queue, namespace string, concurrency int, out io.Writer) (map[string]worker.Result, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	w, err := worker.New(client, worker.Options{Name: "scheduler", Namespace: namespace, Template: podAnnotationsTemplate()})
	if err != nil {
		return nil, err
	}
	defer w.Close(context.Background())

	total, err := countRuns(queue)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	results := map[string]worker.Result{}
	var errs []error
	agent := worker.NewAgent(w, dirSource(queue), worker.AgentOptions{
		Concurrency: concurrency,
		Report: func(r worker.Run, res worker.Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fmt.Fprintf(out, "%-12s error: %v\n", r.ID, err)
				errs = append(errs, err)
			} else {
				fmt.Fprintf(out, "%-12s %-10s exit %3d  %s\n", r.ID, res.Outcome, res.ExitCode, res.PID)
				results[r.ID] = res
			}
			if len(results)+len(errs) == total {
				cancel() // the queue is done
			}
		},
	})
	if total == 0 {
		return results, nil
	}
	if err := agent.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return results, err
	}
	return results, errors.Join(errs...)
}

// dirSource takes the oldest *.yaml file of dir, claiming it by renaming it
// to *.taken so that two schedulers never take one run.
func dirSource(dir string) worker.RunSource {
	return worker.RunSourceFunc(func(ctx context.Context) (worker.Run, bool, error) {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			return worker.Run{}, false, err
		}
		sort.Strings(files)
		taken := strings.TrimSuffix(files[0], ".yaml") + ".taken"
		if err := os.Rename(files[0], taken); err != nil {
			return worker.Run{}, false, nil // another scheduler took it
		}
		data, err := os.ReadFile(taken)
		if err != nil {
			return worker.Run{}, false, err
		}
		var rf runFile
		if err := yaml.UnmarshalStrict(data, &rf); err != nil {
			return worker.Run{}, false, fmt.Errorf("%s: %w", taken, err)
		}
		return worker.Run{ID: rf.ID, Name: rf.Name, Values: rf.Values}, true, nil
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

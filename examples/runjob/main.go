// Command runjob runs one Job through a kubeworker Worker, streams its log
// and prints the Result.
//
// With no flags it starts the project's local control plane (building its
// binaries on first use, with progress) and runs there; kwok plays the
// kubelet, so the pod's log and exit code come from annotations:
//
//	go run ./examples/runjob
//	go run ./examples/runjob -exit-code 3
//
// With -kubeconfig (or -in-cluster) it runs a real busybox Job on that
// cluster instead:
//
//	go run ./examples/runjob -kubeconfig ~/.kube/config -context kind-kind
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/worker"
)

func main() {
	kubeconfigPath := flag.String("kubeconfig", "", "kubeconfig file of a real cluster; default: start the local one")
	kubeContext := flag.String("context", "", "kubeconfig context")
	namespace := flag.String("namespace", "default", "namespace of the Job")
	exitCode := flag.String("exit-code", "0", "on the local cluster: the exit code the run ends with")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *kubeconfigPath, *kubeContext, *namespace, *exitCode); err != nil {
		fmt.Fprintln(os.Stderr, "runjob:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, kubeconfigPath, kubeContext, namespace, exitCode string) error {
	opts := worker.Options{Name: "runjob", Namespace: namespace}
	var cfg *rest.Config
	values := map[string]any{"image": "docker.io/library/busybox:stable"}
	if kubeconfigPath == "" {
		fmt.Fprintln(os.Stderr, "runjob: starting the local control plane (the first run builds it: ~15 min on 2 cores)")
		c, err := clustertest.Start(ctx, clustertest.Options{Progress: os.Stderr})
		if err != nil {
			return err
		}
		defer c.Stop()
		cfg = c.Config()
		opts.Prepare.Customizations = []byte(fmt.Sprintf(`[{"op": "add", "path": "/spec/template/metadata", "value": {"annotations": {%q: "hello from kubeworker\nthe run is done", %q: %q, %q: "1s"}}}]`,
			clustertest.AnnotationLog, clustertest.AnnotationExitCode, exitCode, clustertest.AnnotationDelay))
	} else {
		data, err := os.ReadFile(kubeconfigPath)
		if err != nil {
			return err
		}
		if cfg, err = kubeconfig.Load(kubeconfig.Options{Kubeconfig: data, Context: kubeContext}); err != nil {
			return err
		}
		values["command"] = `sh -c 'echo hello from kubeworker; sleep 1; echo the run is done'`
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	w, err := worker.New(client, opts)
	if err != nil {
		return err
	}
	defer w.Close(context.Background())

	start := time.Now()
	res, err := w.Run(ctx, worker.RunSpec{
		ID:      fmt.Sprintf("runjob-%d", start.Unix()),
		Name:    "runjob example",
		Values:  values,
		Logs:    prefixWriter{},
		Started: func(pid clusterid.PID) { fmt.Printf("job created: %s\n", pid) },
		Events: jobwatch.EventFunc(func(e jobwatch.Event) {
			fmt.Printf("pod %s: %s %s\n", e.Pod, e.Phase, e.Reason)
		}),
	})
	if err != nil {
		return err
	}
	out, _ := json.MarshalIndent(struct {
		PID      string `json:"pid"`
		Outcome  string `json:"outcome"`
		ExitCode int    `json:"exitCode"`
		Reason   string `json:"reason,omitempty"`
		Took     string `json:"took"`
	}{res.PID.String(), res.Outcome.String(), res.ExitCode, res.Reason, time.Since(start).Round(time.Millisecond).String()}, "", "  ")
	fmt.Printf("result: %s\n", out)
	return nil
}

// prefixWriter prints the run's log lines marked as such.
type prefixWriter struct{}

func (prefixWriter) Write(p []byte) (int, error) {
	fmt.Printf("log | %s", p)
	return len(p), nil
}

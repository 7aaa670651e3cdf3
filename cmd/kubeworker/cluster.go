package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/worker"
)

// target is the cluster flags of preflight and run.
type target struct {
	kubeconfig, context string
}

func (t *target) flags(fs *flag.FlagSet) {
	fs.StringVar(&t.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster, else $KUBECONFIG or ~/.kube/config")
	fs.StringVar(&t.context, "context", "", "kubeconfig context; default: its current context")
}

// worker builds a Worker for in's template on t's cluster.
func (t *target) worker(in *input) (*worker.Worker, kubernetes.Interface, error) {
	tmpl, err := in.template()
	if err != nil {
		return nil, nil, err
	}
	opts := kubeconfig.Options{Context: t.context}
	if t.kubeconfig != "" {
		if opts.Kubeconfig, err = in.read(t.kubeconfig); err != nil {
			return nil, nil, fmt.Errorf("--kubeconfig %w", err)
		}
	}
	cfg, err := kubeconfig.Load(opts)
	if err != nil {
		return nil, nil, err
	}
	cfg.Timeout = 30 * time.Second // per request; never a hang on an unreachable cluster
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	w, err := worker.New(client, worker.Options{
		Name: "kubeworker-cli", Template: tmpl, Namespace: in.namespace,
		Render: in.renderOptions(), Prepare: in.prepareOptions(),
	})
	return w, client, err
}

func preflight(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("preflight", flag.ContinueOnError)
	in := &input{stdin: stdin}
	in.flags(fs, defaultRunID)
	var t target
	t.flags(fs)
	out := fs.String("o", "text", "output format: text or json")
	fs.StringVar(out, "output", "text", "same as -o")
	if err := parse(fs, args); err != nil {
		return helpOr(fs, err, stdout)
	}
	if *out != "text" && *out != "json" {
		return &usageError{fmt.Sprintf("preflight: -o %q: want text or json", *out)}
	}
	vals, err := in.values()
	if err != nil {
		return err
	}
	w, _, err := t.worker(in)
	if err != nil {
		return err
	}
	defer w.Close(context.WithoutCancel(ctx))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rep, err := w.Preflight(ctx, worker.PreflightOptions{Values: vals})
	if err != nil {
		return err
	}
	if *out == "json" {
		if err := writeJSON(stdout, reportJSON(rep)); err != nil {
			return err
		}
	} else {
		writeReport(stdout, rep)
	}
	if !rep.OK() {
		return &exitError{1}
	}
	return nil
}

// report is a PreflightReport as JSON.
type report struct {
	OK         bool     `json:"ok"`
	Namespaces []string `json:"namespaces"`
	Missing    []string `json:"missing"`
	Rejections []string `json:"rejections"`
	ClusterUID string   `json:"clusterUIDError,omitempty"`
	Warnings   []string `json:"warnings"`
	Unchecked  []string `json:"unchecked"`
}

func reportJSON(r *worker.PreflightReport) report {
	out := report{OK: r.OK(), Namespaces: r.Namespaces, Missing: []string{}, Rejections: []string{}, Warnings: r.Warnings, Unchecked: r.Unchecked}
	for _, p := range r.Missing {
		out.Missing = append(out.Missing, p.String())
	}
	for _, rj := range r.Rejections {
		out.Rejections = append(out.Rejections, rj.String())
	}
	if r.ClusterUID != nil {
		out.ClusterUID = r.ClusterUID.Error()
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	if out.Unchecked == nil {
		out.Unchecked = []string{}
	}
	return out
}

func writeReport(w io.Writer, r *worker.PreflightReport) {
	fmt.Fprintf(w, "namespaces: %s\n", strings.Join(r.Namespaces, ", "))
	section := func(name string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(w, "%s:\n", name)
		for _, l := range lines {
			fmt.Fprintf(w, "  - %s\n", l)
		}
	}
	j := reportJSON(r)
	section("missing permissions", j.Missing)
	section("rejected", j.Rejections)
	if j.ClusterUID != "" {
		section("cluster UID", []string{j.ClusterUID})
	}
	section("warnings", j.Warnings)
	section("not checked", j.Unchecked)
	if r.OK() {
		fmt.Fprintln(w, "ok: a run can start")
	} else {
		fmt.Fprintln(w, "not ok: a run would fail")
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	in := &input{stdin: stdin}
	in.flags(fs, "")
	var t target
	t.flags(fs)
	out := fs.String("o", "text", "format of the Result on stderr: text or json")
	fs.StringVar(out, "output", "text", "same as -o")
	if err := parse(fs, args); err != nil {
		return helpOr(fs, err, stdout)
	}
	if *out != "text" && *out != "json" {
		return &usageError{fmt.Sprintf("run: -o %q: want text or json", *out)}
	}
	if in.runID == "" {
		in.runID = fmt.Sprintf("cli-%d", time.Now().UnixNano())
	}
	vals, err := in.values()
	if err != nil {
		return err
	}
	w, _, err := t.worker(in)
	if err != nil {
		return err
	}
	defer w.Close(context.WithoutCancel(ctx))
	res, err := w.Run(ctx, worker.RunSpec{ID: in.runID, Name: in.runName, Values: vals, Logs: stdout})
	if err != nil {
		return err
	}
	if *out == "json" {
		if err := writeJSON(stderr, map[string]any{
			"runID": res.RunID, "pid": res.PID.String(), "outcome": res.Outcome.String(), "exitCode": res.ExitCode,
			"reason": res.Reason, "logTail": res.LogTail,
		}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stderr, "run %s: %s, exit code %d (%s)\n", res.RunID, res.Outcome, res.ExitCode, res.PID)
	}
	switch {
	case res.Outcome == jobwatch.Succeeded:
		return nil
	case res.ExitCode > 0:
		return &exitError{min(res.ExitCode, 255)}
	default:
		return &exitError{1}
	}
}

func cluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "provision" {
		fs := flag.NewFlagSet("cluster provision", flag.ContinueOnError)
		kueue := fs.Bool("kueue", false, "also build Kueue (about 5.5 minutes more, cold), for tests that call StartKueue")
		if err := parse(fs, args[1:]); err != nil {
			return helpOr(fs, err, stdout)
		}
		bins, err := clustertest.Provision(ctx, clustertest.Options{Progress: stderr, Kueue: *kueue})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "binaries ready:\n  %s\n  %s\n  %s\n  %s\n  %s\n",
			bins.Etcd, bins.KubeAPIServer, bins.KubeControllerManager, bins.KubeScheduler, bins.Kwok)
		if bins.Kueue != "" {
			fmt.Fprintf(stdout, "  %s\n  %s\n", bins.Kueue, bins.KueueManifests)
		}
		return nil
	}
	if len(args) == 0 || args[0] != "up" {
		return &usageError{"cluster: want cluster up [--kubeconfig FILE] [--kueue] or cluster provision [--kueue]"}
	}
	fs := flag.NewFlagSet("cluster up", flag.ContinueOnError)
	path := fs.String("kubeconfig", "", "also write the admin kubeconfig to this file")
	kueue := fs.Bool("kueue", false, "also start Kueue (building it first if needed)")
	if err := parse(fs, args[1:]); err != nil {
		return helpOr(fs, err, stdout)
	}
	c, err := clustertest.Start(ctx, clustertest.Options{Progress: stderr, Kueue: *kueue})
	if err != nil {
		return err
	}
	if *kueue {
		if err := c.StartKueue(ctx); err != nil {
			return fmt.Errorf("start Kueue: %w (and stop: %v)", err, c.Stop())
		}
	}
	kc := c.Kubeconfig()
	if *path != "" {
		data, err := os.ReadFile(kc)
		if err == nil {
			err = os.WriteFile(*path, data, 0o600)
		}
		if err != nil {
			return fmt.Errorf("--kubeconfig %s: %w (and stop: %v)", *path, err, c.Stop())
		}
		kc = *path
	}
	fmt.Fprintf(stdout, "The local cluster is up. Point kubectl and kubeworker at it:\n\n  export KUBECONFIG=%s\n\nCtrl-C stops it.\n", kc)
	<-ctx.Done()
	return c.Stop()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

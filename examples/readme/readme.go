// Package readme holds the Go snippets of README.md, verbatim, so that
// they compile: readme_test.go checks that each snippet of README.md is
// here. Nothing here is meant to run.
package readme

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/worker"
)

// store records a run's PID.
func store(string, clusterid.PID) {}

type fixedIdentity struct{}

func (fixedIdentity) PID(_ context.Context, ns, name string) (clusterid.PID, error) {
	return clusterid.PID{ClusterUID: "u", Namespace: ns, Name: name}, nil
}

func (fixedIdentity) Kill(context.Context, clusterid.PID, time.Duration) error { return nil }

// runOneScreen is "A run in one screen".
func runOneScreen(ctx context.Context, runID string) error {
	cfg, err := kubeconfig.Load(kubeconfig.Options{}) // in-cluster, else $KUBECONFIG or ~/.kube/config
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	w, err := worker.New(client, worker.Options{Namespace: "jobs"})
	if err != nil {
		return err
	}
	defer w.Close(ctx)
	if err := w.Start(ctx); err != nil { // optional: cluster UID read and watches synced first
		return err
	}
	res, err := w.Run(ctx, worker.RunSpec{
		ID:      runID, // one Job per run ID, whatever the faults
		Values:  map[string]any{"image": "registry.example.com/etl:1.4", "command": "python -m etl"},
		Logs:    os.Stdout,
		Started: func(pid clusterid.PID) { store(runID, pid) }, // as soon as the Job exists
	})
	if err != nil {
		return err // the Job could not be made or followed; every ending of the Job is a Result
	}
	fmt.Println(res.Outcome, res.ExitCode, res.LogTail)
	// res.Outcome (a jobwatch.Outcome): Succeeded, Failed, BackoffLimitExceeded, DeadlineExceeded,
	// Evicted, OOMKilled, ImagePullError, Unschedulable, NeverStarted, Deleted, Cancelled, TimedOut, …
	return nil
}

// fakeParts is the parts snippet.
func fakeParts() (*worker.Worker, error) {
	w, err := worker.New(nil, worker.Options{Parts: worker.Parts{
		Creator: worker.JobCreatorFunc(func(_ context.Context, job *batchv1.Job) (*batchv1.Job, error) { return job, nil }),
		Waiter: worker.JobWaiterFunc(func(context.Context, jobwatch.JobRef, jobwatch.WaitOptions) (jobwatch.Result, error) {
			return jobwatch.Result{Outcome: jobwatch.Failed, ExitCode: 3}, nil
		}),
		Identity: fixedIdentity{}, // PID and Kill
	}})
	return w, err
}

// templatesOneScreen is "Templates in one screen".
func templatesOneScreen(runID string) (*batchv1.Job, error) {
	var err error
	tmpl := manifest.Default() // or manifest.Load(yamlOrJSON)
	cfg, err := tmpl.Render(map[string]any{
		"image":   "registry.example.com/etl:1.4",
		"command": "python -m etl --date 2025-02-13",
		"env.TZ":  "UTC",
	}, manifest.RenderOptions{})
	if err != nil {
		return nil, err // every problem at once, each with its path
	}
	job, err := cfg.Prepare(manifest.Run{ID: runID, Name: "nightly etl"}, manifest.PrepareOptions{})
	if err != nil {
		return nil, err
	}
	// job is a *batchv1.Job, strictly decoded: ready for client-go's Create.
	return job, nil
}

// The test kit snippet, at top level as a user's test file has it.

var cluster *clustertest.Cluster

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, &cluster, clustertest.Options{})) }

func TestMyScheduler(t *testing.T) {
	ns := cluster.NewNamespace(t) // deleted when the test ends
	w, err := worker.New(kubernetes.NewForConfigOrDie(cluster.Config()), worker.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(t.Context())
	res, err := w.Run(t.Context(), worker.RunSpec{ID: "r-1"})
	if err != nil || res.Outcome != jobwatch.Succeeded {
		t.Fatalf("%v, %v", res.Outcome, err)
	}
	// A pod template annotated with clustertest.AnnotationExitCode: "3"
	// would fail with 3 instead.
}

var _ = []any{runOneScreen, fakeParts, templatesOneScreen, TestMain, TestMyScheduler}

package worker_test

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/worker"
)

// A scheduler's unit test: a fake clientset stands in for the cluster, and
// the test plays the Job controller, finishing the Job as soon as the
// Worker reports it created.
func ExampleWorker_Run() {
	ctx := context.Background()
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "cluster-1"}})
	w, err := worker.New(client, worker.Options{Name: "etl", Namespace: "runs"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(ctx)

	finish := func(pid clusterid.PID) {
		jobs := client.BatchV1().Jobs(pid.Namespace)
		job, _ := jobs.Get(ctx, pid.Name, metav1.GetOptions{})
		job.Status.Succeeded = 1
		job.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		_, _ = jobs.UpdateStatus(ctx, job, metav1.UpdateOptions{})
	}
	res, err := w.Run(ctx, worker.RunSpec{ID: "run-1", Started: finish})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.PID)
	fmt.Println(res.Outcome)
	// Output:
	// cluster-1:runs:kubeworker-job-jzs5h67ivv
	// Succeeded
}

// Any part of a Worker can be replaced, a function at a time: here the
// Job is never created or followed, which is how a scheduler tests its own
// retry logic.
func ExampleParts() {
	w, err := worker.New(nil, worker.Options{Parts: worker.Parts{
		Creator: worker.JobCreatorFunc(func(_ context.Context, job *batchv1.Job) (*batchv1.Job, error) { return job, nil }),
		Waiter: worker.JobWaiterFunc(func(context.Context, jobwatch.JobRef, jobwatch.WaitOptions) (jobwatch.Result, error) {
			return jobwatch.Result{Outcome: jobwatch.Failed, ExitCode: 3}, nil
		}),
		Identity: fixedIdentity{},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close(context.Background())
	res, err := w.Run(context.Background(), worker.RunSpec{ID: "run-1"})
	fmt.Println(res.Outcome, res.ExitCode, err)
	// Output: Failed 3 <nil>
}

type fixedIdentity struct{}

func (fixedIdentity) PID(_ context.Context, ns, name string) (clusterid.PID, error) {
	return clusterid.PID{ClusterUID: "test", Namespace: ns, Name: name}, nil
}

func (fixedIdentity) Kill(context.Context, clusterid.PID, time.Duration) error { return nil }

// The Job of a run has a name made from the run ID, so the API server
// itself refuses a second Job for the same run.
func ExampleRunJobName() {
	fmt.Println(worker.RunJobName("etl-", "run-1"))
	fmt.Println(worker.RunJobName("etl-", "run-1") == worker.RunJobName("etl-", "run-1"))
	// Output:
	// etl-jzs5h67ivv
	// true
}

// A long-lived worker readies itself before taking work, as a controller
// syncs its caches: Start reads the cluster UID and syncs the watch of the
// Worker's namespaces, so a missing permission shows now, not at the first
// Run.
func ExampleWorker_Start() {
	client := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "cluster-1"}})
	w, err := worker.New(client, worker.Options{Namespace: "runs"})
	if err != nil {
		panic(err)
	}
	defer w.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		fmt.Println("not ready:", err)
		return
	}
	fmt.Println("ready")
	// Output: ready
}

// A run's template may name the cluster to run in (cluster_config). A
// Worker refuses that unless its Options allow it, and refuses a run's
// kubeconfig that would run a command on the worker's host even then;
// nothing is created anywhere. A cluster given up front (Options.Clusters)
// is picked by a cluster_config with only its name.
func ExampleRunClusters() {
	kubeconfig := map[string]any{
		"clusters": []any{map[string]any{"name": "gpu", "cluster": map[string]any{"server": "https://127.0.0.1:6443"}}},
		"users": []any{map[string]any{"name": "ci", "user": map[string]any{
			"exec": map[string]any{"apiVersion": "client.authentication.k8s.io/v1", "command": "fetch-token"}}}},
		"contexts":        []any{map[string]any{"name": "gpu", "context": map[string]any{"cluster": "gpu", "user": "ci"}}},
		"current-context": "gpu",
	}
	run := worker.RunSpec{ID: "run-1", Values: map[string]any{"cluster_config": map[string]any{"config": kubeconfig}}}
	for _, opts := range []worker.Options{
		{},
		{RunClusters: worker.RunClusters{Allow: true}},
	} {
		opts.Namespace = "runs"
		w, err := worker.New(fake.NewClientset(), opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		_, err = w.Run(context.Background(), run)
		fmt.Println(err)
		w.Close(context.Background())
	}
	// Output:
	// worker: run run-1: cluster_config: this worker does not take per-run clusters (Options.RunClusters.Allow)
	// worker: run run-1: cluster_config.config: kubeconfig: users["ci"].user.exec: a kubeconfig from a run's values may not run a command; give this cluster in the worker's options instead
}

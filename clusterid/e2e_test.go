package clusterid_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
)

// The end-to-end tests run against the real control plane of TestMain.

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	client, err := kubernetes.NewForConfig(needCluster(t).Config())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func noEnv(string) (string, bool) { return "", false }

func TestE2EUIDIsTheKubeSystemNamespaceUID(t *testing.T) {
	client := adminClient(t)
	ns, err := client.CoreV1().Namespaces().Get(t.Context(), "kube-system", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid, err := clusterid.New(client, clusterid.Options{LookupEnv: noEnv}).UID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if uid == "" || uid != string(ns.UID) {
		t.Fatalf("UID = %q, want kube-system's %q", uid, ns.UID)
	}
}

func TestE2EUIDForbiddenHintsAtTheOption(t *testing.T) {
	conf, err := needCluster(t).UserConfig("no-rights")
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = clusterid.New(client, clusterid.Options{LookupEnv: noEnv}).UID(t.Context())
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), clusterid.EnvUID) {
		t.Fatalf("UID as a user without rights: %v; want Forbidden with a hint at %s", err, clusterid.EnvUID)
	}
}

// runningJob creates a Job whose pod runs for an hour and waits until the
// pod is Running.
func runningJob(t *testing.T, client kubernetes.Interface, ns string) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "long-"},
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{clustertest.AnnotationDelay: "1h"}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	job, err := client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the job's pod to run", func(ctx context.Context) (bool, error) {
		pods, err := jobPods(ctx, client, job)
		if err != nil || len(pods) == 0 {
			return false, err
		}
		return pods[0].Status.Phase == corev1.PodRunning, nil
	})
	return job
}

func jobPods(ctx context.Context, client kubernetes.Interface, job *batchv1.Job) ([]corev1.Pod, error) {
	list, err := client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(job.UID)})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// poll calls cond every 100ms for up to a minute and fails the test if it
// never holds.
func poll(t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, cond); err != nil {
		t.Fatalf("wait for %s: %v", what, err)
	}
}

func TestE2EKillDeletesTheJobAndItsPods(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	job := runningJob(t, client, ns)
	ids := clusterid.New(client, clusterid.Options{LookupEnv: noEnv})
	pid, err := ids.PID(t.Context(), job.Namespace, job.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Kill(t.Context(), pid, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Foreground: while its pods go, the Job waits with a finalizer.
	if j, err := client.BatchV1().Jobs(ns).Get(t.Context(), job.Name, metav1.GetOptions{}); err == nil {
		if !slices.Contains(j.Finalizers, metav1.FinalizerDeleteDependents) {
			t.Errorf("the Job being deleted has finalizers %v, want %s", j.Finalizers, metav1.FinalizerDeleteDependents)
		}
	}
	poll(t, "the job and its pods to go", func(ctx context.Context) (bool, error) {
		_, err := client.BatchV1().Jobs(ns).Get(ctx, job.Name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, nil
		}
		pods, err := jobPods(ctx, client, job)
		return err == nil && len(pods) == 0, err
	})
}

func TestE2EKillOfAMissingJobIsErrNotFound(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	ids := clusterid.New(client, clusterid.Options{LookupEnv: noEnv})
	pid, err := ids.PID(t.Context(), ns, "never-created")
	if err != nil {
		t.Fatal(err)
	}
	err = ids.Kill(t.Context(), pid, 0)
	if !errors.Is(err, clusterid.ErrNotFound) || !apierrors.IsNotFound(err) {
		t.Fatalf("Kill of a missing job: %v; want ErrNotFound and an API NotFound", err)
	}
}

func TestE2EKillRefusesAPIDOfAnotherCluster(t *testing.T) {
	client := adminClient(t)
	ns := cluster.NewNamespace(t)
	job := runningJob(t, client, ns)
	ids := clusterid.New(client, clusterid.Options{LookupEnv: noEnv})
	pid := clusterid.PID{ClusterUID: "00000000-0000-0000-0000-000000000000", Namespace: ns, Name: job.Name}
	var wrong *clusterid.WrongClusterError
	if err := ids.Kill(t.Context(), pid, 0); !errors.As(err, &wrong) {
		t.Fatalf("Kill of another cluster's PID: %v; want a *WrongClusterError", err)
	}
	got, err := client.BatchV1().Jobs(ns).Get(t.Context(), job.Name, metav1.GetOptions{})
	if err != nil || got.DeletionTimestamp != nil {
		t.Fatalf("the job should be untouched: %v, deletionTimestamp %v", err, got.GetDeletionTimestamp())
	}
}

package clustertest

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// A Job whose pod is scripted to exit 3 after 100 ms fails as a real one
// would: the Job controller counts the failed pod and marks the Job
// Failed. (cluster comes from this package's TestMain, as in the package
// doc.)
func Example() {
	ctx := context.Background()
	client := kubernetes.NewForConfigOrDie(cluster.Config())
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "example-"}}, metav1.CreateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "scripted"},
		Spec: batchv1.JobSpec{BackoffLimit: new(int32), Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationExitCode: "3", AnnotationDelay: "100ms"}},
			Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "any"}}},
		}},
	}
	if _, err := client.BatchV1().Jobs(ns.Name).Create(ctx, job, metav1.CreateOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	var failed *batchv1.JobCondition
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs(ns.Name).Get(ctx, "scripted", metav1.GetOptions{})
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				failed = &c
			}
		}
		return failed != nil, err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	pods, err := client.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "job-name=scripted"})
	if err != nil || len(pods.Items) != 1 {
		fmt.Println(err, len(pods.Items))
		return
	}
	term := pods.Items[0].Status.ContainerStatuses[0].State.Terminated
	fmt.Println(failed.Reason, term.ExitCode, term.Reason)
	// Output: BackoffLimitExceeded 3 Error
}

package clustertest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// TestAPodScriptedToStayTerminating: a delete leaves it Terminating; only a
// delete with a grace period of 0 removes it.
func TestAPodScriptedToStayTerminating(t *testing.T) {
	ns := cluster.NewNamespace(t)
	client := kubernetes.NewForConfigOrDie(cluster.Config())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stuck", Namespace: ns, Annotations: map[string]string{AnnotationStuckTerminating: "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}
	ctx := t.Context()
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(ns).Get(ctx, "stuck", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, running); err != nil {
		t.Fatalf("the pod never ran: %v", err)
	}
	if err := client.CoreV1().Pods(ns).Delete(ctx, "stuck", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// It stays: give kwok time to act if it were going to.
	time.Sleep(3 * time.Second)
	p, err := client.CoreV1().Pods(ns).Get(ctx, "stuck", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil {
		t.Fatalf("after a delete: %v, %+v; want the pod still there, Terminating", err, p)
	}
	if err := client.CoreV1().Pods(ns).Delete(ctx, "stuck", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	gone := func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Pods(ns).Get(ctx, "stuck", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, gone); err != nil {
		t.Fatalf("a forced delete did not remove it: %v", err)
	}
}

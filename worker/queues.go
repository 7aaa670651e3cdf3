package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/manifest"
)

// kueueGroup is Kueue's API group; kueueVersion the version read;
// visibilityGroup is its visibility API's group.
const (
	kueueGroup      = "kueue.x-k8s.io"
	kueueVersion    = "v1beta2"
	visibilityGroup = "visibility.kueue.x-k8s.io"
)

// QueueRules returns the RBAC rules a worker needs, besides [Rules], in
// a namespace where its runs go through Kueue (the template's
// queue_name): list and watch on Workloads (the shared Workload stream
// that follows a queued run's admission, preemption and requeues), get
// on LocalQueues (Preflight: the run's LocalQueue exists and its
// ClusterQueue is active) and get on their pendingworkloads in Kueue's
// visibility API (a waiting run's place in its queue,
// jobwatch.Queueing.Position; without it, or where the visibility API is
// not served, positions are not reported and nothing else changes).
func QueueRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{kueueGroup}, Resources: []string{"workloads"}, Verbs: []string{"list", "watch"}},
		{APIGroups: []string{kueueGroup}, Resources: []string{"localqueues"}, Verbs: []string{"get"}},
		{APIGroups: []string{visibilityGroup}, Resources: []string{"localqueues/pendingworkloads"}, Verbs: []string{"get"}},
	}
}

// queued reports whether job waits in a Kueue LocalQueue.
func queued(job *batchv1.Job) bool { return job.Labels[manifest.LabelQueueName] != "" }

// localQueue is what Preflight reads of a LocalQueue.
type localQueue struct {
	Spec struct {
		ClusterQueue string `json:"clusterQueue"`
	} `json:"spec"`
	Status struct {
		Conditions []metav1.Condition `json:"conditions"`
	} `json:"status"`
}

// checkLocalQueue adds to rep what stops job's LocalQueue from admitting
// it: the queue missing, Kueue not installed, or its ClusterQueue
// missing or inactive (the LocalQueue's Active condition, with Kueue's
// reason and message).
func checkLocalQueue(ctx context.Context, client kubernetes.Interface, job *batchv1.Job, rep *PreflightReport) error {
	name := job.Labels[manifest.LabelQueueName]
	rc := client.Discovery().RESTClient()
	if rc == nil {
		rep.Unchecked = append(rep.Unchecked, fmt.Sprintf("LocalQueue %s/%s: the client cannot read Kueue objects (a fake clientset?)", job.Namespace, name))
		return nil
	}
	path := fmt.Sprintf("/apis/%s/%s/namespaces/%s/localqueues/%s", kueueGroup, kueueVersion, job.Namespace, name)
	raw, err := rc.Get().AbsPath(path).DoRaw(ctx)
	reject := func(reason metav1.StatusReason, msg, hint string) {
		rep.Rejections = append(rep.Rejections, Rejection{Namespace: job.Namespace, Object: "LocalQueue", Reason: reason, Message: msg, Hint: hint, Err: err})
	}
	switch {
	case apierrors.IsNotFound(err) && !kueueServed(ctx, client):
		reject(metav1.StatusReasonNotFound, "Kueue is not installed: the cluster serves no "+kueueGroup+"/"+kueueVersion,
			fmt.Sprintf("the Job would stay suspended: install Kueue, or run without queue_name (%q)", name))
		return nil
	case apierrors.IsNotFound(err):
		reject(metav1.StatusReasonNotFound, fmt.Sprintf("LocalQueue %q does not exist in namespace %s", name, job.Namespace),
			"Kueue would leave the Job suspended, inadmissible: create the LocalQueue or fix queue_name")
		return nil
	case apierrors.IsForbidden(err):
		rep.Unchecked = append(rep.Unchecked, fmt.Sprintf("LocalQueue %s/%s: the identity may not get localqueues.%s", job.Namespace, name, kueueGroup))
		return nil
	case err != nil:
		return fmt.Errorf("get LocalQueue %s/%s: %w", job.Namespace, name, err)
	}
	var lq localQueue
	if err := json.Unmarshal(raw, &lq); err != nil {
		return fmt.Errorf("read LocalQueue %s/%s: %w", job.Namespace, name, err)
	}
	active := apimeta.FindStatusCondition(lq.Status.Conditions, "Active")
	switch {
	case active == nil:
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("LocalQueue %s/%s has no Active condition yet (is Kueue running?)", job.Namespace, name))
	case active.Status != metav1.ConditionTrue:
		reject(metav1.StatusReason(active.Reason), active.Message,
			fmt.Sprintf("LocalQueue %q's ClusterQueue %q is not active: Kueue admits nothing from it until it is", name, lq.Spec.ClusterQueue))
	}
	return nil
}

// kueueServed reports whether the cluster serves Kueue's API.
func kueueServed(ctx context.Context, client kubernetes.Interface) bool {
	_, err := client.Discovery().ServerResourcesForGroupVersion(kueueGroup + "/" + kueueVersion)
	return err == nil || !apierrors.IsNotFound(err) && !errors.Is(err, context.Canceled)
}

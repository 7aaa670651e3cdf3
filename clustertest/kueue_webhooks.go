package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"
)

// Kueue's webhooks are registered from its own manifests
// (config/components/webhook/manifests.yaml of its module, copied at build
// time): the same names, rules, paths, failure and side-effect policies,
// with each service reference replaced by the URL of the local Kueue and
// the cluster CA as caBundle. Two changes keep the shared cluster's other
// tests out of Kueue's way:
//   - Only the webhooks for Kueue's own kinds (group kueue.x-k8s.io) and for
//     batch Jobs are registered. The pod, Deployment, StatefulSet and other
//     frameworks' webhooks are left out: those integrations are off, and
//     the pod ones would put every pod of the cluster through Kueue (and
//     refuse them all while it is stopped).
//   - The Job webhooks select only Jobs labelled kueue.x-k8s.io/queue-name:
//     the rest never reach Kueue, so stopping it ([Cluster.StopKueue])
//     refuses only queued Jobs, and Kueue's LocalQueueDefaulting (which
//     gives unlabelled Jobs the queue of a LocalQueue named "default") does
//     not apply here.

// kueueQueueLabel is the label that puts a Job in a LocalQueue.
const kueueQueueLabel = "kueue.x-k8s.io/queue-name"

// kueueWebhookGroups are the API groups whose webhooks are registered.
var kueueWebhookGroups = []string{"kueue.x-k8s.io", "batch"}

// kueueWebhookPrefix is put before the names of Kueue's webhook
// configurations, as Kueue's release manifests do.
const kueueWebhookPrefix = "kueue-"

// kueueWebhooks turns Kueue's webhook manifests into the configurations
// to create: see above.
func kueueWebhooks(manifests []byte, c kueueConfig, caPEM []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	var mutating *admissionregistrationv1.MutatingWebhookConfiguration
	var validating *admissionregistrationv1.ValidatingWebhookConfiguration
	for _, doc := range bytes.Split(manifests, []byte("\n---")) {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, nil, fmt.Errorf("parse Kueue's webhook manifests: %w", err)
		}
		switch meta.Kind {
		case "MutatingWebhookConfiguration":
			mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, mutating); err != nil {
				return nil, nil, fmt.Errorf("parse Kueue's %s: %w", meta.Kind, err)
			}
			mutating.Name = kueueWebhookPrefix + mutating.Name
			mutating.Webhooks = slices.DeleteFunc(mutating.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool {
				return !kueueWebhookWanted(w.Rules)
			})
			for i := range mutating.Webhooks {
				w := &mutating.Webhooks[i]
				if err := kueueWebhookLocal(&w.ClientConfig, &w.ObjectSelector, w.Rules, c, caPEM); err != nil {
					return nil, nil, fmt.Errorf("webhook %s: %w", w.Name, err)
				}
			}
		case "ValidatingWebhookConfiguration":
			validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict(doc, validating); err != nil {
				return nil, nil, fmt.Errorf("parse Kueue's %s: %w", meta.Kind, err)
			}
			validating.Name = kueueWebhookPrefix + validating.Name
			validating.Webhooks = slices.DeleteFunc(validating.Webhooks, func(w admissionregistrationv1.ValidatingWebhook) bool {
				return !kueueWebhookWanted(w.Rules)
			})
			for i := range validating.Webhooks {
				w := &validating.Webhooks[i]
				if err := kueueWebhookLocal(&w.ClientConfig, &w.ObjectSelector, w.Rules, c, caPEM); err != nil {
					return nil, nil, fmt.Errorf("webhook %s: %w", w.Name, err)
				}
			}
		}
	}
	if mutating == nil || validating == nil || len(mutating.Webhooks) == 0 || len(validating.Webhooks) == 0 {
		return nil, nil, fmt.Errorf("the webhook manifests of Kueue lack a mutating or a validating webhook for %v", kueueWebhookGroups)
	}
	return mutating, validating, nil
}

// kueueWebhookWanted reports whether every rule is about a group of
// kueueWebhookGroups.
func kueueWebhookWanted(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		for _, g := range r.APIGroups {
			if !slices.Contains(kueueWebhookGroups, g) {
				return false
			}
		}
	}
	return len(rules) > 0
}

// kueueWebhookLocal points a webhook at the local Kueue, and limits a Job
// webhook to Jobs with a queue label.
func kueueWebhookLocal(cc *admissionregistrationv1.WebhookClientConfig, sel **metav1.LabelSelector, rules []admissionregistrationv1.RuleWithOperations, c kueueConfig, caPEM []byte) error {
	if cc.Service == nil || cc.Service.Path == nil {
		return fmt.Errorf("no service path to replace")
	}
	url := c.url(*cc.Service.Path)
	cc.Service, cc.URL, cc.CABundle = nil, &url, caPEM
	for _, r := range rules {
		if slices.Contains(r.APIGroups, "batch") {
			*sel = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: kueueQueueLabel, Operator: metav1.LabelSelectorOpExists},
			}}
		}
	}
	return nil
}

// registerKueueWebhooks registers Kueue's webhooks once, then waits until
// the API server calls them: until a server-side dry run of a Job with an
// invalid queue name is denied by Kueue's Job validating webhook (after
// its mutating one). Until then, the API server either has not seen the
// configurations yet, or cannot reach Kueue.
func (c *Cluster) registerKueueWebhooks(ctx context.Context, k *kueueRun) error {
	if !k.webhooks {
		manifests, err := os.ReadFile(filepath.Join(c.bins.KueueManifests, "webhook", "manifests.yaml"))
		if err != nil {
			return fmt.Errorf("read Kueue's webhook manifests: %w", err)
		}
		mutating, validating, err := kueueWebhooks(manifests, k.cfg, c.files.ca.certPEM)
		if err != nil {
			return err
		}
		adm := c.client.AdmissionregistrationV1()
		if _, err := adm.MutatingWebhookConfigurations().Create(ctx, mutating, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", mutating.Name, err)
		}
		if _, err := adm.ValidatingWebhookConfigurations().Create(ctx, validating, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s: %w", validating.Name, err)
		}
		k.webhooks = true
	}
	probe := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "clustertest-kueue-probe-",
			Labels:       map[string]string{kueueQueueLabel: "not_a_queue_name"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "probe", Image: "probe"}},
		}}},
	}
	const denied = `admission webhook "vjob.kb.io" denied the request`
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, c.opts.startTimeout(), true, func(ctx context.Context) (bool, error) {
		_, last = c.client.BatchV1().Jobs(metav1.NamespaceDefault).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return last != nil && strings.Contains(last.Error(), denied), nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not call Kueue's webhooks: %w (last: %v)", err, last)
	}
	return nil
}

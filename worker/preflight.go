package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/manifest"
)

// ErrPreflight is wrapped by PreflightReport.Err when the report lists a
// problem.
var ErrPreflight = errors.New("worker: preflight found problems")

// PreflightRunID is the run ID of the probe Job that Preflight prepares
// and sends to the API server as a dry run; nothing is stored.
const PreflightRunID = "kubeworker-preflight"

// PreflightOptions tune [Worker.Preflight]. The zero value checks the
// namespace a run with no values goes to.
type PreflightOptions struct {
	// Namespaces are checked besides the probe Job's own namespace (that
	// of a run with Values). Default: none.
	Namespaces []string
	// Values fill the template's variables for the probe Job, as a run's
	// values do. Default: none, the template's defaults.
	Values map[string]any
	// Cluster names the cluster checked: Options.ClusterName or a
	// Cluster's Name. Default: the cluster a run with Values goes to (the
	// Worker's own, unless they render a cluster_config).
	Cluster string
	// Client is the identity checked. Default: the client of the cluster
	// checked (for the Worker's own, the client New was given); required
	// when New was given none.
	Client kubernetes.Interface
}

// PreflightReport is what Preflight found. Nothing in it means a run can
// start: see OK and Err.
type PreflightReport struct {
	// Cluster names the cluster checked, as Result.Cluster does.
	Cluster string
	// Namespaces are the namespaces checked, the probe Job's first.
	Namespaces []string
	// Missing lists each permission that the worker needs (Rules, with
	// secrets when Options.Secrets asks for them) and its identity lacks,
	// per namespace, as a SelfSubjectAccessReview answers.
	Missing []Permission
	// Rejections lists what the API server refused in a dry run of the
	// probe Job (dryRun=All: admission webhooks, quota, validation), and
	// refusals that would hit the Job's pods (Pod Security, a missing
	// service account).
	Rejections []Rejection
	// ClusterUID is the error reading the cluster UID, which Run needs to
	// name a Job's PID once it exists, or nil.
	ClusterUID error
	// Warnings are the API server's other warnings about the probe Job,
	// verbatim.
	Warnings []string
	// Unchecked says what could not be checked and why (a right the
	// check needs but the worker does not).
	Unchecked []string
}

// Permission is one verb on one resource in one namespace.
type Permission struct {
	Namespace   string
	Verb        string
	Group       string // "" for the core group
	Resource    string // "jobs", "pods", "events", "secrets"
	Subresource string // "log" for pods/log
	// Reason is the authorizer's reason, when it gave one.
	Reason string
}

// String returns "get pods/log in namespace ns".
func (p Permission) String() string {
	res := p.Resource
	if p.Group != "" {
		res += "." + p.Group
	}
	if p.Subresource != "" {
		res += "/" + p.Subresource
	}
	return fmt.Sprintf("%s %s in namespace %s", p.Verb, res, p.Namespace)
}

// Rejection is a refusal of the probe Job, or of the pods it would make.
type Rejection struct {
	Namespace string
	// Object is "Job" for a refusal of the Job itself, "Pod" for one that
	// would hit its pods only, "LocalQueue" for a Kueue queue that would
	// not admit it.
	Object string
	// Reason and Message are the API's (Forbidden, Invalid, ...). For Pod
	// Security, which only warns when it admits a Job, Reason is
	// Forbidden and Message the warning.
	Reason  metav1.StatusReason
	Message string
	// Hint says what to check: for a refused Job, the same hint as a
	// *jobcreate.Error for that refusal.
	Hint string
	// Err is the dry run's error, if the refusal came as one; errors.As
	// reaches its *apierrors.StatusError.
	Err error
}

// String describes the refusal in one line, with its hint.
func (r Rejection) String() string {
	s := fmt.Sprintf("%s refused in namespace %s: %s: %s", r.Object, r.Namespace, r.Reason, r.Message)
	if r.Hint != "" {
		s += " (hint: " + r.Hint + ")"
	}
	return s
}

// OK reports whether the report lists no problem: no permission missing,
// no rejection, the cluster UID read. Warnings and Unchecked do not count.
func (r *PreflightReport) OK() bool {
	return len(r.Missing) == 0 && len(r.Rejections) == 0 && r.ClusterUID == nil
}

// Err returns nil if the report is OK, else an error wrapping
// ErrPreflight (and the cluster UID's error) that lists every problem.
func (r *PreflightReport) Err() error {
	if r.OK() {
		return nil
	}
	var lines []string
	for _, p := range r.Missing {
		lines = append(lines, "missing permission: "+p.String())
	}
	for _, j := range r.Rejections {
		lines = append(lines, j.String())
	}
	err := fmt.Errorf("%w:\n  %s", ErrPreflight, strings.Join(lines, "\n  "))
	if r.ClusterUID != nil {
		err = fmt.Errorf("%w\n  cannot read the cluster UID: %w", err, r.ClusterUID)
	}
	return err
}

// Preflight checks, before any run, that the Worker can run Jobs: for
// each namespace, a SelfSubjectAccessReview of every verb and resource of
// [Rules] (so the check and the install manifest cannot drift apart),
// then a server-side dry run (dryRun=All) of the probe Job, prepared by
// Options.Preparer as a run with opts.Values would be. Admission
// webhooks, quota on Jobs and validation refuse the dry run as they
// would the Job; Pod Security, which enforces on pods only, warns about
// the Job's pod template, and Preflight reports the warning as a refusal
// of the pods when the namespace enforces that level (or when it cannot
// read the namespace to know). When it may read service accounts, it
// also checks that the pods' service account exists. For a probe Job
// that waits in a Kueue queue (queue_name), it checks [QueueRules] too
// and reads the LocalQueue: missing, Kueue not installed, or its
// ClusterQueue missing or inactive is a Rejection of Object
// "LocalQueue" with Kueue's reason and message. A fleet replica whose
// Leases are in the Job namespace (Fleet.Namespace empty) checks
// [FleetRules] too. Nothing is created.
//
// The report lists problems; the error is for a Preflight that could not
// check (no client, a template that does not render, the API server not
// answering).
//
// What a dry run of the Job cannot see: a ResourceQuota or LimitRange on
// pods, and admission that applies to pods only. Run reports those at
// once as the Outcome jobwatch.CannotCreatePod.
func (w *Worker) Preflight(ctx context.Context, opts PreflightOptions) (*PreflightReport, error) {
	job, cfg, err := w.opts.Parts.Preparer.Prepare(ctx, RunSpec{ID: PreflightRunID, Name: "preflight", Values: opts.Values})
	if err != nil {
		return nil, fmt.Errorf("worker: preflight: prepare the probe Job: %w", err)
	}
	c, release, err := w.preflightCluster(ctx, opts.Cluster, cfg)
	if err != nil {
		return nil, fmt.Errorf("worker: preflight: %w", err)
	}
	defer release()
	client := opts.Client
	if client == nil {
		client = c.client
	}
	if client == nil {
		return nil, errors.New("worker: preflight: no client; set PreflightOptions.Client")
	}
	rep := &PreflightReport{Cluster: c.name, Namespaces: []string{job.Namespace}}
	for _, ns := range opts.Namespaces {
		if !slices.Contains(rep.Namespaces, ns) {
			rep.Namespaces = append(rep.Namespaces, ns)
		}
	}
	rules := Rules(w.opts.Secrets.APIKey || w.opts.Secrets.Env)
	if queued(job) {
		rules = append(rules, QueueRules()...)
	}
	if w.fleet != nil && w.opts.Fleet.Namespace == "" {
		// The Leases are in the Job namespace.
		rules = append(rules, FleetRules()...)
	}
	for _, ns := range rep.Namespaces {
		missing, err := missingPermissions(ctx, client, ns, rules)
		if err != nil {
			return rep, fmt.Errorf("worker: preflight: %w", err)
		}
		rep.Missing = append(rep.Missing, missing...)
		probe := job.DeepCopy()
		probe.Namespace = ns
		if err := dryRun(ctx, client, probe, rep); err != nil {
			return rep, fmt.Errorf("worker: preflight: %w", err)
		}
		if err := checkServiceAccount(ctx, client, probe, rep); err != nil {
			return rep, fmt.Errorf("worker: preflight: %w", err)
		}
		if queued(probe) {
			if err := checkLocalQueue(ctx, client, probe, rep); err != nil {
				return rep, fmt.Errorf("worker: preflight: %w", err)
			}
		}
	}
	if _, err := c.parts.Identity.PID(ctx, job.Namespace, "preflight"); err != nil {
		rep.ClusterUID = err
	}
	return rep, nil
}

// preflightCluster returns the cluster named name, else the one the probe
// Job's rendered template cfg goes to.
func (w *Worker) preflightCluster(ctx context.Context, name string, cfg *manifest.Config) (*clusterParts, func(), error) {
	if name == "" {
		var cc *manifest.ClusterConfig
		if cfg != nil {
			cc = cfg.ClusterConfig
		}
		return w.clusters.forRun(ctx, cc)
	}
	for _, c := range w.clusters.upFront() {
		if c.name == name {
			return c, noRelease, nil
		}
	}
	return nil, nil, fmt.Errorf("PreflightOptions.Cluster %q is not Options.ClusterName nor the Name of one of Options.Clusters", name)
}

// missingPermissions asks, verb by verb, whether the client may do what
// rules grant in ns, and returns what it may not.
func missingPermissions(ctx context.Context, client kubernetes.Interface, ns string, rules []rbacv1.PolicyRule) ([]Permission, error) {
	var missing []Permission
	for _, r := range rules {
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, verb := range r.Verbs {
					p := Permission{Namespace: ns, Verb: verb, Group: group, Resource: resource, Subresource: sub}
					allowed, reason, err := mayI(ctx, client, p)
					if err != nil {
						return nil, err
					}
					if !allowed {
						p.Reason = reason
						missing = append(missing, p)
					}
				}
			}
		}
	}
	return missing, nil
}

// mayI asks the API server whether the client may do p.
func mayI(ctx context.Context, client kubernetes.Interface, p Permission) (bool, string, error) {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: p.Namespace, Verb: p.Verb, Group: p.Group, Resource: p.Resource, Subresource: p.Subresource,
		},
	}}
	got, err := client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("access review of %s: %w", p, err)
	}
	return got.Status.Allowed, got.Status.Reason, nil
}

// dryRun sends job as a dry-run create and adds what the API server
// refused or warned of to rep. It fails only when the dry run could not
// be made at all.
func dryRun(ctx context.Context, client kubernetes.Interface, job *batchv1.Job, rep *PreflightReport) error {
	res := client.BatchV1().RESTClient().Post().
		Namespace(job.Namespace).Resource("jobs").
		VersionedParams(&metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}, scheme.ParameterCodec).
		Body(job).Do(ctx)
	err := res.Error()
	var status apierrors.APIStatus
	if err != nil && !errors.As(err, &status) {
		return fmt.Errorf("dry run of the probe Job in namespace %s: %w", job.Namespace, err)
	}
	if err != nil {
		ce := jobcreate.Explain(job, PreflightRunID, err)
		rep.Rejections = append(rep.Rejections, Rejection{
			Namespace: job.Namespace, Object: "Job", Reason: ce.Reason, Message: ce.Message, Hint: ce.Hint, Err: err,
		})
	}
	for _, warn := range res.Warnings() {
		level, ok := podSecurityLevel(warn.Text)
		if !ok {
			rep.Warnings = append(rep.Warnings, warn.Text)
			continue
		}
		enforced, known := enforcesPodSecurity(ctx, client, job.Namespace, level)
		switch {
		case known && !enforced:
			rep.Warnings = append(rep.Warnings, warn.Text)
		case known:
			rep.Rejections = append(rep.Rejections, Rejection{
				Namespace: job.Namespace, Object: "Pod", Reason: metav1.StatusReasonForbidden, Message: warn.Text,
				Hint: fmt.Sprintf("namespace %q enforces Pod Security %q, which the Job's pod template violates: the Job would be created, but not its pods (FailedCreate); fix the template's securityContext", job.Namespace, level),
			})
		default:
			rep.Rejections = append(rep.Rejections, Rejection{
				Namespace: job.Namespace, Object: "Pod", Reason: metav1.StatusReasonForbidden, Message: warn.Text,
				Hint: fmt.Sprintf("the Job's pod template violates Pod Security %q, which namespace %q warns of and may enforce (the worker may not read the namespace to tell): if it does, the Job's pods will not be created; fix the template's securityContext", level, job.Namespace),
			})
		}
	}
	return nil
}

// podSecurityLevel reads the level out of Pod Security's warning:
// `would violate PodSecurity "restricted:latest": ...`.
func podSecurityLevel(warning string) (string, bool) {
	const prefix = `would violate PodSecurity "`
	_, rest, ok := strings.Cut(warning, prefix)
	if !ok {
		return "", false
	}
	level, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return "", false
	}
	level, _, _ = strings.Cut(level, ":")
	return level, true
}

// Pod Security levels, least strict first.
var podSecurityLevels = []string{"privileged", "baseline", "restricted"}

// enforcesPodSecurity reports whether namespace ns enforces level or a
// stricter one, and whether that could be told (reading the namespace
// needs a right the worker does not need otherwise).
func enforcesPodSecurity(ctx context.Context, client kubernetes.Interface, ns, level string) (enforced, known bool) {
	n, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return false, false
	}
	enforce := n.Labels["pod-security.kubernetes.io/enforce"]
	if enforce == "" {
		enforce = "privileged"
	}
	return slices.Index(podSecurityLevels, enforce) >= slices.Index(podSecurityLevels, level), true
}

// checkServiceAccount checks that the service account the Job's pods
// name exists in their namespace, if the client may read it; the
// ServiceAccount admission plugin refuses pods whose account is missing.
func checkServiceAccount(ctx context.Context, client kubernetes.Interface, job *batchv1.Job, rep *PreflightReport) error {
	name := job.Spec.Template.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	p := Permission{Namespace: job.Namespace, Verb: "get", Resource: "serviceaccounts"}
	allowed, _, err := mayI(ctx, client, p)
	if err != nil {
		return err
	}
	if !allowed {
		rep.Unchecked = append(rep.Unchecked, fmt.Sprintf("service account %q of the Job's pods in namespace %s: the identity may not %s", name, job.Namespace, p))
		return nil
	}
	_, err = client.CoreV1().ServiceAccounts(job.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		var status apierrors.APIStatus
		errors.As(err, &status)
		rep.Rejections = append(rep.Rejections, Rejection{
			Namespace: job.Namespace, Object: "Pod", Reason: metav1.StatusReasonNotFound, Message: status.Status().Message, Err: err,
			Hint: fmt.Sprintf("the Job's pods run as service account %q, which namespace %q lacks: their creation would be refused (FailedCreate); create it or change the template's service account", name, job.Namespace),
		})
	case err != nil && !apierrors.IsForbidden(err):
		return fmt.Errorf("get service account %s/%s: %w", job.Namespace, name, err)
	}
	return nil
}

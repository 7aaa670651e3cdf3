package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
)

// The manifest's account name in the end-to-end tests.
const deployName = "kw"

// grant is one verb on one resource of the Role.
type grant struct{ resource, verb string }

func (g grant) String() string { return g.resource + "/" + g.verb }

// grants lists every verb the Role grants.
func grants(rules []rbacv1.PolicyRule) []grant {
	var out []grant
	for _, r := range rules {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				out = append(out, grant{res, v})
			}
		}
	}
	return out
}

// without returns rules less one verb.
func without(rules []rbacv1.PolicyRule, g grant) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, r := range rules {
		r = *r.DeepCopy()
		if slices.Contains(r.Resources, g.resource) {
			r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == g.verb })
		}
		if len(r.Verbs) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// deployAccount applies a ServiceAccount, a Role with rules (default
// Rules(true), as install.DeploymentManifest writes it) and its RoleBinding
// to ns as the admin, and returns a client acting as the
// account, and the account's token.
func deployAccount(t *testing.T, ns string, rules []rbacv1.PolicyRule) (kubernetes.Interface, string) {
	t.Helper()
	ctx := t.Context()
	if rules == nil {
		rules = Rules(true)
	}
	meta := metav1.ObjectMeta{Name: deployName, Namespace: ns}
	admin := adminClient(t)
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: meta, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: deployName},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: deployName, Namespace: ns}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := cluster.ServiceAccountToken(ctx, ns, deployName)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cluster.TokenConfig(token))
	if err != nil {
		t.Fatal(err)
	}
	return client, token
}

// probes make, as the account, each call the library makes with one verb,
// on objects that need not exist: NotFound means allowed.
var probes = map[grant]func(ctx context.Context, c kubernetes.Interface, ns string) error{
	{"jobs", "create"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "i"}}}}}}
		_, err := c.BatchV1().Jobs(ns).Create(ctx, job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	},
	{"jobs", "get"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		_, err := c.BatchV1().Jobs(ns).Get(ctx, "probe", metav1.GetOptions{})
		return err
	},
	{"jobs", "list"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		_, err := c.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		return err
	},
	{"jobs", "watch"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		w, err := c.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
		if err == nil {
			w.Stop()
		}
		return err
	},
	{"jobs", "delete"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		return c.BatchV1().Jobs(ns).Delete(ctx, "probe", metav1.DeleteOptions{})
	},
	{"jobs", "patch"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		_, err := c.BatchV1().Jobs(ns).Patch(ctx, "probe", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
		return err
	},
	{"pods", "list"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		_, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err
	},
	{"pods", "watch"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		w, err := c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		if err == nil {
			w.Stop()
		}
		return err
	},
	{"pods", "delete"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		return c.CoreV1().Pods(ns).Delete(ctx, "probe", metav1.DeleteOptions{})
	},
	{"pods/log", "get"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		return c.CoreV1().Pods(ns).GetLogs("probe", &corev1.PodLogOptions{}).Do(ctx).Error()
	},
	{"events", "create"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "probe"}, InvolvedObject: corev1.ObjectReference{Kind: "Job", Name: "probe", Namespace: ns}}
		_, err := c.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	},
	{"events", "list"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		_, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		return err
	},
	{"secrets", "get"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		_, err := c.CoreV1().Secrets(ns).Get(ctx, "probe", metav1.GetOptions{})
		return err
	},
	{"secrets", "create"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}
		_, err := c.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	},
	{"secrets", "update"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}
		_, err := c.CoreV1().Secrets(ns).Update(ctx, s, metav1.UpdateOptions{})
		return err
	},
	{"secrets", "delete"}: func(ctx context.Context, c kubernetes.Interface, ns string) error {
		return c.CoreV1().Secrets(ns).Delete(ctx, "probe", metav1.DeleteOptions{})
	},
}

// waitRBAC waits (bounded) until the account may make every probe call of
// granted and none of denied, as RBAC reaches the API server's cache.
func waitRBAC(t *testing.T, c kubernetes.Interface, ns string, granted, denied []grant) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, g := range granted {
			if err := probes[g](ctx, c, ns); err != nil && !apierrors.IsNotFound(err) {
				last = errors.Join(errors.New(g.String()+" not yet allowed"), err)
				return false, nil
			}
		}
		for _, g := range denied {
			if err := probes[g](ctx, c, ns); !apierrors.IsForbidden(err) {
				last = errors.Join(errors.New(g.String()+" not Forbidden"), err)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("RBAC did not settle: %v: %v", err, last)
	}
}

// newAccountWorker builds a Worker acting as client in ns, with the cluster
// UID given as the manifest's env var would.
func newAccountWorker(t *testing.T, client kubernetes.Interface, ns string, opts Options) *Worker {
	t.Helper()
	opts.Namespace = ns
	if opts.Prepare.Customizations == nil {
		opts.Prepare.Customizations = podAnnotations(map[string]string{clustertest.AnnotationLog: "hello"})
	}
	opts.Retry = fastRetry
	opts.Parts.Identity = clusterid.New(client, clusterid.Options{UID: "test-uid"})
	w, err := New(client, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// scenario is what a worker with the deployed account does: Start, a run with a
// secret env value (secret mode), its log followed, then Kill of the
// finished Job and Close. It returns the first thing that went wrong.
func scenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	warnings := &warnLog{}
	w := newAccountWorker(t, client, ns, Options{Secrets: SecretsOptions{Env: true}, Logger: slog.New(warnings)})
	// Without the right to read logs the run waits for its log until ctx
	// ends.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var logs bytes.Buffer
	err := w.Start(ctx)
	var res Result
	if err == nil {
		res, err = w.Run(ctx, RunSpec{
			ID: "deploy-1", Logs: &logs, Env: map[string]string{"TOKEN": "s3cr3t"},
		})
	}
	if err == nil && res.Outcome != jobwatch.Succeeded {
		err = errors.New("outcome " + res.Outcome.String())
	}
	if err == nil && logs.String() != "hello\n" {
		err = errors.New("the run's log was not read: got " + logs.String())
	}
	if err == nil {
		err = w.Kill(ctx, res.PID, 0)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	return errors.Join(err, w.Close(cctx), warnings.err())
}

// warnLog is a slog.Handler that keeps the records of level Warn and up:
// a worker that lacks a right it needs says so there even when it
// recovers (a watch refused, the informer relisting instead).
type warnLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *warnLog) Handle(_ context.Context, r slog.Record) error {
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.mu.Lock()
	h.msgs = append(h.msgs, msg)
	h.mu.Unlock()
	return nil
}

func (h *warnLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *warnLog) WithGroup(string) slog.Handler      { return h }

func (h *warnLog) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.msgs) == 0 {
		return nil
	}
	return errors.New("the worker logged warnings: " + strings.Join(h.msgs, "; "))
}

func TestDeploymentManifestRoleIsEnough(t *testing.T) {
	ns := cluster.NewNamespace(t)
	rules := Rules(true)
	client, token := deployAccount(t, ns, rules)
	waitRBAC(t, client, ns, grants(rules), nil)
	if err := scenario(t, client, ns); err != nil {
		t.Fatalf("a worker with the manifest's Role failed: %v", err)
	}
	t.Run("a refused Job's secret is deleted", func(t *testing.T) {
		if err := refusedJobScenario(t, client, ns); err != nil {
			t.Error(err)
		}
	})
	t.Run("an ambiguous create is resolved", func(t *testing.T) {
		if err := ambiguousCreateScenario(t, token, ns); err != nil {
			t.Error(err)
		}
	})
	t.Run("a second Run of a run adopts its Job", func(t *testing.T) {
		if err := rerunScenario(t, client, ns); err != nil {
			t.Error(err)
		}
	})
	t.Run("pods are followed when their watch is refused", func(t *testing.T) {
		if err := podWatchRefusedScenario(t, token, ns); err != nil {
			t.Error(err)
		}
	})
	t.Run("a retained Job gets its TTL back once its result is recorded", func(t *testing.T) {
		if err := retainScenario(t, client, ns); err != nil {
			t.Error(err)
		}
	})
	t.Run("a pod that never starts is diagnosed with its events", func(t *testing.T) {
		if err := pendingScenario(t, client, ns); err != nil {
			t.Error(err)
		}
	})
}

// refusedJobScenario runs, in secret mode, a Job the API server refuses as
// invalid: the worker deletes the Secret it made for it. It returns what
// went wrong other than the refusal.
func refusedJobScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	opts := Options{Secrets: SecretsOptions{Env: true}}
	opts.Prepare.Customizations = []byte(`[{"op": "add", "path": "/spec/activeDeadlineSeconds", "value": -1}]`)
	w := newAccountWorker(t, client, ns, opts)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := w.Run(ctx, RunSpec{ID: "refused-1", Env: map[string]string{"TOKEN": "s3cr3t"}})
	cerr := w.Close(ctx)
	switch {
	case err == nil:
		return errors.New("an invalid Job was created")
	case !apierrors.IsInvalid(err):
		return fmt.Errorf("the run failed other than by the refusal: %w", err)
	case strings.Contains(strings.ToLower(err.Error()), "forbidden"):
		return err
	}
	return cerr
}

// ambiguousCreateScenario runs through the fault proxy, which drops the
// answer to the Job create: the worker must find the Job it made.
func ambiguousCreateScenario(t *testing.T, token, ns string) error {
	t.Helper()
	client, err := kubernetes.NewForConfig(cluster.Proxy().Config(token))
	if err != nil {
		t.Fatal(err)
	}
	w := newAccountWorker(t, client, ns, Options{})
	defer func() { _ = w.Close(context.Background()) }()
	cluster.Proxy().CutNextAfterResponse(func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Path == "/apis/batch/v1/namespaces/"+ns+"/jobs"
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := w.Run(ctx, RunSpec{ID: "ambiguous-1"})
	if err == nil && res.Outcome != jobwatch.Succeeded {
		err = errors.New("outcome " + res.Outcome.String())
	}
	return err
}

// listScenario readies a worker and lists its runs, as a restarted worker
// does before it attaches: the shared Job stream (Start) and List read the
// namespace's Jobs with a LIST.
func listScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	w := newAccountWorker(t, client, ns, Options{})
	defer func() { _ = w.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, lerr := w.List(ctx)
	return errors.Join(w.Start(ctx), lerr)
}

// rerunScenario runs the same run twice: the second Run finds the run's
// Job by name (a create refused as AlreadyExists, then a get) and adopts
// it, as a scheduler retrying a run it is unsure of does.
func rerunScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	w := newAccountWorker(t, client, ns, Options{})
	defer func() { _ = w.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	first, err := w.Run(ctx, RunSpec{ID: "rerun-1"})
	if err != nil {
		return err
	}
	second, err := w.Run(ctx, RunSpec{ID: "rerun-1"})
	switch {
	case err != nil:
		return fmt.Errorf("second Run of the run: %w", err)
	case second.PID != first.PID:
		return fmt.Errorf("second Run followed %s, not the run's Job %s", second.PID, first.PID)
	case second.Outcome != jobwatch.Succeeded:
		return errors.New("outcome " + second.Outcome.String())
	}
	return nil
}

// podWatchRefusedScenario runs a Job through a proxy that refuses to
// watch pods in ns, as a gateway that cuts long-running requests does
// (and as older API servers without streaming lists make the informer
// list): the pod stream lives on lists, and the run still ends with its
// exit code.
func podWatchRefusedScenario(t *testing.T, token, ns string) error {
	t.Helper()
	undo := cluster.Proxy().Refuse(func(r *http.Request) bool {
		return r.URL.Path == "/api/v1/namespaces/"+ns+"/pods" && r.URL.Query().Get("watch") == "true"
	})
	defer undo()
	client, err := kubernetes.NewForConfig(cluster.Proxy().Config(token))
	if err != nil {
		t.Fatal(err)
	}
	warnings := &warnLog{}
	opts := Options{Logger: slog.New(warnings)}
	opts.Prepare.Customizations = podAnnotations(map[string]string{clustertest.AnnotationExitCode: "3"})
	w := newAccountWorker(t, client, ns, opts)
	defer func() { _ = w.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := w.Run(ctx, RunSpec{ID: "refused-watch-1"})
	if err == nil && (res.Outcome != jobwatch.Failed || res.ExitCode != 3) {
		err = fmt.Errorf("outcome %s, exit code %d; want Failed, 3", res.Outcome, res.ExitCode)
	}
	return errors.Join(err, warnings.err())
}

// pendingScenario runs a Job whose image never pulls, with a short pod
// start timeout: the Result carries a Diagnosis made with the pod's
// events.
func pendingScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	warnings := &warnLog{}
	opts := Options{Logger: slog.New(warnings)}
	opts.Prepare.Customizations = podAnnotations(map[string]string{clustertest.AnnotationImagePull: "ErrImagePull"})
	w := newAccountWorker(t, client, ns, opts)
	defer func() { _ = w.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := w.Run(ctx, RunSpec{ID: "pending-1", Values: map[string]any{"pod_watch_timeout_seconds": 2}})
	switch {
	case err != nil:
	case res.Outcome != jobwatch.ImagePullError:
		err = errors.New("outcome " + res.Outcome.String())
	case res.Diagnosis == nil || len(res.Diagnosis.Events) == 0:
		err = errors.New("the diagnosis has no events")
	}
	return errors.Join(err, warnings.err())
}

// retainScenario runs a Job whose template sets ttlSecondsAfterFinished 0
// with RetainUntilRecorded: the Job is kept until Run has its result, then
// its TTL is set back (a patch) and the TTL controller deletes it.
func retainScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	warnings := &warnLog{}
	opts := Options{Logger: slog.New(warnings), RetainUntilRecorded: true}
	opts.Prepare.Customizations = []byte(`[{"op": "add", "path": "/spec/ttlSecondsAfterFinished", "value": 0}]`)
	w := newAccountWorker(t, client, ns, opts)
	defer func() { _ = w.Close(context.Background()) }()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	res, err := w.Run(ctx, RunSpec{ID: "retain-1"})
	if err == nil && res.Outcome != jobwatch.Succeeded {
		err = errors.New("outcome " + res.Outcome.String())
	}
	if err == nil {
		err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, gerr := client.BatchV1().Jobs(ns).Get(ctx, res.PID.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(gerr), nil
		})
		if err != nil {
			err = fmt.Errorf("the Job was not deleted after its result was recorded: %w", err)
		}
	}
	return errors.Join(err, warnings.err())
}

// startRun starts run id on w, in the background, and returns its Job's
// PID once the Job exists.
func startRun(t *testing.T, w *Worker, id string) (clusterid.PID, error) {
	t.Helper()
	started := make(chan clusterid.PID, 1)
	go func() {
		_, _ = w.Run(t.Context(), RunSpec{ID: id, Started: func(p clusterid.PID) { started <- p }})
	}()
	select {
	case pid := <-started:
		return pid, nil
	case <-time.After(e2eTimeout):
		return clusterid.PID{}, fmt.Errorf("run %s: no Job", id)
	}
}

// cancelStuckScenario cancels, with force, a run whose pod never finishes
// terminating: Cancel must return once the Job and its pod are gone.
func cancelStuckScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	opts := Options{}
	opts.Prepare.Customizations = podAnnotations(map[string]string{clustertest.AnnotationDelay: "1h", clustertest.AnnotationStuckTerminating: "true"})
	w := newAccountWorker(t, client, ns, opts)
	defer func() { _ = w.Close(context.Background()) }()
	// A pod left stuck (the Cancel without the verb) would keep the
	// namespace terminating for good.
	t.Cleanup(func() {
		_ = adminClient(t).CoreV1().Pods(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}, metav1.ListOptions{})
	})
	pid, err := startRun(t, w, "cancel-1")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	return w.Cancel(ctx, pid, "stop", CancelOptions{Grace: new(time.Second), Force: true, ForceAfter: time.Second})
}

// cancelTwiceScenario cancels a run from one Worker, then again from
// another once the Job is gone: the second must know it was cancelled.
func cancelTwiceScenario(t *testing.T, client kubernetes.Interface, ns string) error {
	t.Helper()
	opts := Options{}
	opts.Prepare.Customizations = podAnnotations(map[string]string{clustertest.AnnotationDelay: "1h"})
	first, second := newAccountWorker(t, client, ns, opts), newAccountWorker(t, client, ns, opts)
	defer func() { _ = first.Close(context.Background()); _ = second.Close(context.Background()) }()
	pid, err := startRun(t, first, "cancel-twice")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := first.Cancel(ctx, pid, "stop", CancelOptions{}); err != nil {
		return err
	}
	if err := second.Cancel(ctx, pid, "stop", CancelOptions{}); err != nil {
		return fmt.Errorf("a second Cancel from another Worker: %w", err)
	}
	return second.CancelRun(ctx, "cancel-twice", "stop", CancelOptions{})
}

// TestDeploymentManifestRoleIsMinimal removes each verb of the Role in
// turn: the call the library makes with it is then Forbidden, and a
// scenario that needs the verb fails.
func TestDeploymentManifestRoleIsMinimal(t *testing.T) {
	rules := Rules(true)
	all := grants(rules)
	if len(all) != len(probes) {
		t.Fatalf("the Role grants %d verbs but %d are probed: %v", len(all), len(probes), all)
	}
	// The scenario that needs the verb, when the main one does not.
	special := map[grant]func(t *testing.T, client kubernetes.Interface, token, ns string) error{
		{"jobs", "get"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return rerunScenario(t, client, ns)
		},
		{"jobs", "list"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return listScenario(t, client, ns)
		},
		{"pods", "list"}: func(t *testing.T, _ kubernetes.Interface, token, ns string) error {
			return podWatchRefusedScenario(t, token, ns)
		},
		{"events", "list"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return pendingScenario(t, client, ns)
		},
		{"jobs", "patch"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return retainScenario(t, client, ns)
		},
		{"secrets", "delete"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return refusedJobScenario(t, client, ns)
		},
		{"pods", "delete"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return cancelStuckScenario(t, client, ns)
		},
		{"events", "create"}: func(t *testing.T, client kubernetes.Interface, _, ns string) error {
			return cancelTwiceScenario(t, client, ns)
		},
	}
	for _, g := range all {
		t.Run("without "+g.String(), func(t *testing.T) {
			t.Parallel()
			ns := cluster.NewNamespace(t)
			less := without(rules, g)
			client, token := deployAccount(t, ns, less)
			waitRBAC(t, client, ns, grants(less), []grant{g})
			run := func() error { return scenario(t, client, ns) }
			if f := special[g]; f != nil {
				run = func() error { return f(t, client, token, ns) }
			}
			if err := run(); err == nil {
				t.Errorf("the worker needs %s, but did everything without it", g)
			} else {
				t.Logf("without %s: %v", g, err)
			}
		})
	}
}

package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// podLogs gives every scheduled pod readable logs: a CRI-format file per
// container, a kwok Logs object pointing at the files, and then the
// logs-ready annotation that lets kwok start the pod. So by the time a pod
// is Running, its logs are served (never "no logs found").
type podLogs struct {
	dir    string
	client kubernetes.Interface
	dyn    dynamic.Interface
	logger *slog.Logger

	factory informers.SharedInformerFactory
	pods    cache.SharedIndexInformer
	queue   workqueue.TypedRateLimitingInterface[string]
	cancel  context.CancelFunc
	workers sync.WaitGroup

	mu   sync.Mutex
	last map[string]time.Time // per file, the timestamp of its last line

	attempts attempts
}

// attempts numbers the pods of each Job that carry
// [AnnotationFailAttempts], in the order the harness's watch delivers them.
type attempts struct {
	mu sync.Mutex
	// seen is, per Job UID, how many of its pods have been numbered. It is
	// never shrunk: were it reset when a Job's pods are all deleted, a
	// later pod would count as a first attempt again. It grows by one
	// entry per Job that uses the annotation, for the cluster's life.
	seen map[types.UID]int
	// number is, per pod UID, the pod's place among its Job's pods, from
	// 0; dropped when the pod is deleted.
	number map[types.UID]int
}

var logsResource = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

// startPodLogs watches all pods until stop.
func startPodLogs(ctx context.Context, dir string, client kubernetes.Interface, dyn dynamic.Interface, logger *slog.Logger) (*podLogs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("make pod log directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &podLogs{
		dir:     dir,
		client:  client,
		dyn:     dyn,
		logger:  logger,
		factory: informers.NewSharedInformerFactory(client, 0),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](20*time.Millisecond, time.Second)),
		cancel: cancel,
		last:   map[string]time.Time{},

		attempts: attempts{seen: map[types.UID]int{}, number: map[types.UID]int{}},
	}
	l.pods = l.factory.Core().V1().Pods().Informer()
	enqueue := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		// Number the pod before it is queued, so setUp finds its number.
		l.attempts.add(pod)
		if needsLogs(pod) {
			l.queue.Add(pod.Namespace + "/" + pod.Name)
		}
	}
	_, err := l.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: l.attempts.remove,
	})
	if err != nil {
		l.stop()
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	l.factory.StartWithContext(ctx)
	if err := l.factory.WaitForCacheSyncWithContext(ctx).AsError(); err != nil {
		l.stop()
		return nil, fmt.Errorf("watch pods: %w", err)
	}
	for range 2 {
		l.workers.Go(func() {
			for l.next(ctx) {
			}
		})
	}
	return l, nil
}

// stop ends the watch and the workers and waits for them.
func (l *podLogs) stop() {
	l.cancel()
	l.queue.ShutDown()
	l.workers.Wait()
	l.factory.Shutdown()
}

// needsLogs reports whether a pod is on a node and not yet set up.
func needsLogs(pod *corev1.Pod) bool {
	_, ready := pod.Annotations[AnnotationLogsReady]
	return pod.Spec.NodeName != "" && pod.DeletionTimestamp == nil && !ready
}

// next handles one queued pod; false once the queue is shut down.
func (l *podLogs) next(ctx context.Context) bool {
	key, quit := l.queue.Get()
	if quit {
		return false
	}
	defer l.queue.Done(key)
	err := l.setUp(ctx, key, l.queue.NumRequeues(key) >= 3)
	switch {
	case err == nil || ctx.Err() != nil || apierrors.IsNotFound(err) ||
		apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		// Done, stopping, or the pod is going away.
		l.queue.Forget(key)
	case l.queue.NumRequeues(key) < 10:
		// kwok may not have seen the Logs object yet.
		l.logger.Debug("set up pod logs", "pod", key, "err", err)
		l.queue.AddRateLimited(key)
	default:
		l.logger.Warn("set up pod logs", "pod", key, "err", err)
		l.queue.AddRateLimited(key)
	}
	return true
}

// setUp writes the pod's log files, creates its Logs object, checks that
// the API server serves the log, and marks the pod logs-ready, in the same
// patch making it a failed attempt if [AnnotationFailAttempts] says so. With nudge,
// an existing Logs object is touched first: kwok v0.8.0 caches its list of
// Logs by the reflector's resourceVersion, which can move on before the
// object reaches the list, and then it answers "log target not found"
// until the next change to any Logs object.
func (l *podLogs) setUp(ctx context.Context, key string, nudge bool) error {
	obj, exists, err := l.pods.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return err
	}
	pod := obj.(*corev1.Pod)
	if !needsLogs(pod) {
		return nil
	}
	fail, err := l.attempts.fails(pod)
	if err != nil {
		return err
	}
	containers := podContainers(pod)
	for _, c := range containers {
		if err := l.create(pod, c); err != nil {
			return err
		}
	}
	if err := l.createLogsObject(ctx, pod, containers, nudge); err != nil {
		return err
	}
	// kwok learns of the Logs object through its own watch; ask until it
	// serves the log.
	opts := &corev1.PodLogOptions{Container: containers[0], LimitBytes: new(int64(1))}
	if _, err := l.client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, opts).DoRaw(ctx); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	annotations := map[string]any{AnnotationLogsReady: "true"}
	if fail {
		// In the same patch, so kwok never sees the pod start otherwise.
		maps.Copy(annotations, failedAttempt(pod))
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return fmt.Errorf("make logs-ready patch: %w", err)
	}
	_, err = l.client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// jobUID is the UID of the Job, or other controller, that owns pod: the
// controller owner reference's, else the Job controller's label; "" for a
// pod without either.
func jobUID(pod *corev1.Pod) types.UID {
	if ref := metav1.GetControllerOf(pod); ref != nil {
		return ref.UID
	}
	return types.UID(pod.Labels[batchv1.ControllerUidLabel])
}

// add numbers pod among its Job's pods, if it carries
// [AnnotationFailAttempts] and has no number yet.
//
// It is called from the informer's event handler, before the pod is
// queued. A handler's notifications arrive one at a time, in the order of
// the watch, which is the order of creation (etcd's revisions). So each
// pod gets the next number of its Job exactly once, under a lock, and two
// pods can never share a number, however their set-ups race: at most N
// pods of a Job ever fail by the annotation. (Counting the informer's
// cache at set-up time instead would race: the cache runs ahead of the
// handler, so two new pods could each see only the other, or neither.)
// Pods first seen in a relist after a lost watch (an API server restart)
// are numbered in list order, which is name order, not creation order.
func (a *attempts) add(pod *corev1.Pod) {
	if _, ok := pod.Annotations[AnnotationFailAttempts]; !ok {
		return
	}
	job := jobUID(pod)
	if job == "" {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.number[pod.UID]; ok {
		return
	}
	a.number[pod.UID] = a.seen[job]
	a.seen[job]++
}

// remove forgets a deleted pod's number.
func (a *attempts) remove(obj any) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.number, pod.UID)
	}
}

// fails reports whether pod is one of the first N pods of its Job, with
// N from its [AnnotationFailAttempts] (not an integer counts as 0). It
// fails if the pod carries the annotation but has not been numbered yet
// (the cache can hold a pod before the handler has seen it); the caller
// tries again.
func (a *attempts) fails(pod *corev1.Pod) (bool, error) {
	value, ok := pod.Annotations[AnnotationFailAttempts]
	if !ok || jobUID(pod) == "" {
		return false, nil
	}
	a.mu.Lock()
	number, ok := a.number[pod.UID]
	a.mu.Unlock()
	if !ok {
		return false, fmt.Errorf("pod %s not yet numbered among its Job's pods", pod.UID)
	}
	n, _ := strconv.Atoi(value)
	return number < n, nil
}

// failedAttempt is the annotations, to merge into pod's, that make every
// container exit 1 with reason Error, whatever pod's other annotations
// say (null deletes an annotation).
func failedAttempt(pod *corev1.Pod) map[string]any {
	out := map[string]any{AnnotationExitCode: "1", AnnotationReason: "Error", AnnotationEvict: nil}
	for _, c := range pod.Spec.Containers {
		if _, ok := pod.Annotations[AnnotationExitCode+"."+c.Name]; ok {
			out[AnnotationExitCode+"."+c.Name] = "1"
		}
		if _, ok := pod.Annotations[AnnotationReason+"."+c.Name]; ok {
			out[AnnotationReason+"."+c.Name] = "Error"
		}
	}
	return out
}

func podContainers(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	return names
}

// create makes a container's log file with the lines its annotation gives,
// unless the file exists.
func (l *podLogs) create(pod *corev1.Pod, container string) error {
	path := l.file(pod.Namespace, pod.Name, container)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create log file: %w", err)
	}
	text, ok := pod.Annotations[AnnotationLog+"."+container]
	if !ok {
		text = pod.Annotations[AnnotationLog]
	}
	if text == "" {
		return nil
	}
	text = expandEnv(text, containerEnv(pod, container))
	_, partial := pod.Annotations[AnnotationLogPartial]
	return l.append(path, strings.Split(strings.TrimSuffix(text, "\n"), "\n"), partial)
}

// containerEnv is a container's env as the kubelet resolves it: in list
// order, each value's $(NAME) references expanded against the entries
// before it. Entries with valueFrom are left out (nothing resolves them
// here).
func containerEnv(pod *corev1.Pod, container string) map[string]string {
	env := map[string]string{}
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Name != container {
				continue
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					env[e.Name] = expandEnv(e.Value, env)
				}
			}
			return env
		}
	}
	return env
}

// expandEnv expands $(NAME) in s as the kubelet expands a container's
// command, args and env values: a name not in env stays as written, and
// "$$" is a "$".
func expandEnv(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// createLogsObject tells kwok where the pod's logs are. The object is
// owned by the pod, so it goes with it. With nudge, an object that exists
// gets a new annotation value, so kwok's watch sees a change.
func (l *podLogs) createLogsObject(ctx context.Context, pod *corev1.Pod, containers []string, nudge bool) error {
	var entries []any
	for _, c := range containers {
		entries = append(entries, map[string]any{
			"containers": []any{c},
			"logsFile":   l.file(pod.Namespace, pod.Name, c),
			"follow":     true,
		})
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "Logs",
		"metadata": map[string]any{
			"name":      pod.Name,
			"namespace": pod.Namespace,
			"ownerReferences": []any{map[string]any{
				"apiVersion": "v1", "kind": "Pod", "name": pod.Name, "uid": string(pod.UID),
			}},
		},
		"spec": map[string]any{"logs": entries},
	}}
	logs := l.dyn.Resource(logsResource).Namespace(pod.Namespace)
	_, err := logs.Create(ctx, obj, metav1.CreateOptions{})
	switch {
	case err == nil:
		return nil
	case !apierrors.IsAlreadyExists(err):
		return fmt.Errorf("create Logs object: %w", err)
	case !nudge:
		return nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, annotationNudged, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := logs.Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("touch Logs object: %w", err)
	}
	return nil
}

// annotationNudged is set on a Logs object to make kwok list it again.
const annotationNudged = AnnotationPrefix + "nudged"

// file is where a container's log is kept. Namespace and pod names hold
// no underscore, so the name is unambiguous.
func (l *podLogs) file(namespace, pod, container string) string {
	return filepath.Join(l.dir, namespace+"_"+pod+"_"+container+".log")
}

// append adds lines to a log file in CRI format ("<time> stdout F <text>"),
// each with a timestamp later than any before it in the file. With
// partial, the last is a partial entry ("<time> stdout P <text>"), which a
// reader serves without a newline: the log ends mid-line, and whatever is
// appended next continues that line.
func (l *podLogs) append(path string, lines []string, partial bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	var b strings.Builder
	for i, line := range lines {
		ts := time.Now().UTC()
		if last := l.last[path]; !ts.After(last) {
			ts = last.Add(time.Nanosecond)
		}
		l.last[path] = ts
		tag := "F"
		if partial && i == len(lines)-1 {
			tag = "P"
		}
		fmt.Fprintf(&b, "%s stdout %s %s\n", ts.Format(time.RFC3339Nano), tag, line)
	}
	_, err = f.WriteString(b.String())
	return errors.Join(err, f.Close())
}

// AppendPodLog adds lines to the log of a container of a pod, as if the
// container printed them now; a follow stream receives them within
// milliseconds. A line holding "\n" becomes several. Every line gets its
// own timestamp, later than any before it, so a client may resume after
// the last timestamp it saw without losing or repeating a line (although
// the API's sinceTime has whole-second resolution). The log exists once
// the pod has been scheduled and set up, which is before it is Running;
// before that AppendPodLog fails. After a log that ends mid-line
// ([AnnotationLogPartial]) the first line appended continues that line.
// It is safe for concurrent use.
func (c *Cluster) AppendPodLog(namespace, pod, container string, lines ...string) error {
	path := c.podLogs.file(namespace, pod, container)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no log for container %q of pod %s/%s yet (it is made when the pod is scheduled): %w", container, namespace, pod, err)
	}
	var split []string
	for _, line := range lines {
		split = append(split, strings.Split(line, "\n")...)
	}
	return c.podLogs.append(path, split, false)
}

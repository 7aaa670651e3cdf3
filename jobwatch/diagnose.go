package jobwatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// failedCreateReason is the reason of the event the Job controller
// records when the API server refuses a pod of the Job.
const failedCreateReason = "FailedCreate"

// diagnose explains why pod (the Job's newest pod, nil if it has none)
// has not started, from its status and from events, and returns the
// Outcome that says so: ImagePullError, CrashLoop, Unschedulable,
// CannotCreatePod or NeverStarted. The pod's status is current and
// certain, so it is read first; events (oldest first) fill in what the
// status lacks. A FailedCreate event counts only while the Job has no
// pod: once one exists, an older refusal no longer explains anything.
func diagnose(pod *corev1.Pod, events []corev1.Event) (Outcome, *Diagnosis) {
	d := &Diagnosis{Events: events}
	if pod != nil {
		if s, ok := waitingWith(pod, func(reason string) bool { return imagePullReasons[reason] }); ok {
			d.Cause, d.Reason, d.Message, d.Container = CauseImagePull, s.State.Waiting.Reason, s.State.Waiting.Message, s.Name
			d.Image = imageOf(pod, s.Name)
			return ImagePullError, d
		}
		if s, ok := waitingWith(pod, func(reason string) bool { return reason == crashLoopReason }); ok {
			d.Cause, d.Reason, d.Message, d.Container = CauseCrashLoop, s.State.Waiting.Reason, s.State.Waiting.Message, s.Name
			return CrashLoop, d
		}
		if c := unschedulable(pod); c != nil {
			d.Reason, d.Message = c.Reason, c.Message
			d.Scheduling = parseScheduling(c.Message)
			d.Cause = d.Scheduling.cause()
			return Unschedulable, d
		}
	}
	// Newest event first: the latest word on the matter.
	for _, e := range slices.Backward(events) {
		switch {
		case e.Reason == "FailedScheduling" && e.InvolvedObject.Kind == "Pod":
			d.Reason, d.Message = e.Reason, e.Message
			d.Scheduling = parseScheduling(e.Message)
			d.Cause = d.Scheduling.cause()
			return Unschedulable, d
		case e.Reason == failedCreateReason && e.InvolvedObject.Kind == "Job" && pod == nil:
			d.Reason, d.Message = e.Reason, e.Message
			createCause(d, e.Message)
			return CannotCreatePod, d
		}
	}
	if pod != nil {
		if s, ok := waitingWith(pod, func(reason string) bool { return reason != "" }); ok {
			d.Reason, d.Message, d.Container = s.State.Waiting.Reason, s.State.Waiting.Message, s.Name
		}
	}
	return NeverStarted, d
}

var (
	quotaName          = regexp.MustCompile(`(?:exceeded quota|status unknown for quota): ([^,\s]+)`)
	serviceAccountName = regexp.MustCompile(`error looking up service account [^/\s]+/([^:\s]+)`)
)

// createCause sets d's Cause (and Quota or ServiceAccount) from the
// message of a FailedCreate event, "Error creating: " and the API
// server's refusal, and reports whether the refusal is one that the Job
// controller's retries will not get past while nothing changes: quota,
// a missing service account, Pod Security, another admission refusal, an
// invalid pod. Anything else (a timeout, an internal error) may pass on a
// retry, and is CauseUnknown.
//
// Two refusals are a restarting API server's, not the pod's, and pass: its
// admission plugins answer "not yet ready to handle request" until their
// caches have synced, and its RBAC authorizer denies the Job controller
// itself (cannot create pods) until its own have. A cluster where the
// controller really may not create pods meets the pod start timeout.
func createCause(d *Diagnosis, msg string) (lasting bool) {
	switch {
	case strings.Contains(msg, "not yet ready to handle request"),
		strings.Contains(msg, `"system:serviceaccount:kube-system:job-controller" cannot create resource "pods"`):
		d.Cause = CauseUnknown
		return false
	case quotaName.MatchString(msg):
		d.Cause, d.Quota = CauseQuota, quotaName.FindStringSubmatch(msg)[1]
	case serviceAccountName.MatchString(msg):
		d.Cause, d.ServiceAccount = CauseServiceAccount, serviceAccountName.FindStringSubmatch(msg)[1]
	case strings.Contains(msg, "violates PodSecurity"):
		d.Cause = CausePodSecurity
	case strings.Contains(msg, " is forbidden: "), strings.Contains(msg, " is invalid: "), strings.Contains(msg, "denied the request"):
		d.Cause = CauseAdmission
	default:
		d.Cause = CauseUnknown
		return false
	}
	return true
}

// imageOf returns the image of the named container of pod, init
// containers included, or "" (the cached pods are trimmed of images).
func imageOf(pod *corev1.Pod, name string) string {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == name {
				return c.Image
			}
		}
	}
	return ""
}

// enrich fills in what the trimmed cache cannot tell a Diagnosis: the
// image that cannot be pulled and the claims the pod mounts (from the
// pod's full spec, one list of pods by name), and the taints the pod does
// not tolerate (from the nodes, if the client may list them). Failures
// leave the fields empty.
func enrich(ctx context.Context, client kubernetes.Interface, ns string, pod *corev1.Pod, d *Diagnosis) error {
	if pod == nil {
		return nil
	}
	f := d.Scheduling
	needImage := d.Cause == CauseImagePull && d.Image == ""
	needClaims := f != nil && f.Claims != "" && len(f.ClaimNames) == 0
	needTaints := f != nil && f.UntoleratedTaint > 0 && len(f.Taints) == 0
	if !needImage && !needClaims && !needTaints {
		return nil
	}
	sel := fields.OneTermEqualSelector("metadata.name", pod.Name).String()
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return fmt.Errorf("list pod %s/%s: %w", ns, pod.Name, err)
	}
	i := slices.IndexFunc(list.Items, func(p corev1.Pod) bool { return p.UID == pod.UID })
	if i < 0 {
		return nil
	}
	full := &list.Items[i]
	if needImage {
		d.Image = imageOf(full, d.Container)
	}
	if needClaims {
		f.ClaimNames = claimNames(full)
	}
	if needTaints {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("list nodes to name the taints: %w", err)
		}
		f.Taints, f.nodesRead = untoleratedTaints(full, nodes.Items), true
		d.Cause = f.cause()
	}
	return nil
}

// claimNames lists the PersistentVolumeClaims pod mounts, generic
// ephemeral volumes included (their claim is named pod-volume).
func claimNames(pod *corev1.Pod) []string {
	var names []string
	for _, v := range pod.Spec.Volumes {
		switch {
		case v.PersistentVolumeClaim != nil:
			names = append(names, v.PersistentVolumeClaim.ClaimName)
		case v.Ephemeral != nil:
			names = append(names, pod.Name+"-"+v.Name)
		}
	}
	return names
}

// listEvents returns the events of the Job and of pod (if not nil),
// oldest first. A failure to list one kind is returned joined, with
// whatever was listed.
func listEvents(ctx context.Context, client kubernetes.Interface, job *batchv1.Job, pod *corev1.Pod) ([]corev1.Event, error) {
	type object struct {
		kind, name string
		uid        types.UID
	}
	objects := []object{{"Job", job.Name, job.UID}}
	if pod != nil {
		objects = append(objects, object{"Pod", pod.Name, pod.UID})
	}
	var all []corev1.Event
	var errs []error
	for _, o := range objects {
		sel := fields.Set{"involvedObject.kind": o.kind, "involvedObject.name": o.name, "involvedObject.uid": string(o.uid)}
		list, err := client.CoreV1().Events(job.Namespace).List(ctx, metav1.ListOptions{FieldSelector: sel.AsSelector().String()})
		if err != nil {
			errs = append(errs, fmt.Errorf("list events of %s %s/%s: %w", o.kind, job.Namespace, o.name, err))
			continue
		}
		for _, e := range list.Items {
			if e.InvolvedObject.UID != o.uid || e.InvolvedObject.Kind != o.kind {
				continue // a server (or fake) that ignores the field selector
			}
			e.ManagedFields = nil
			all = append(all, e)
		}
	}
	sortEvents(all)
	return all, errors.Join(errs...)
}

// sortEvents orders events oldest first by their best time: eventTime,
// else lastTimestamp, else firstTimestamp, else creation time.
func sortEvents(events []corev1.Event) {
	slices.SortStableFunc(events, func(a, b corev1.Event) int {
		return cmp.Compare(eventTime(a).UnixNano(), eventTime(b).UnixNano())
	})
}

func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

package jobwatch

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// Why is it pending: each cause on the local cluster, with the real
// kube-scheduler, admission and Job controller, and kwok nodes carrying
// taints and labels. The scheduler's messages are the real ones.

// poolLabel and poolTaintKey mark the nodes a test adds: labelled and
// tainted with the test's namespace, so that no other test's pod lands
// there and each test's pods can ask for its own nodes.
const (
	poolLabel    = "test.kubeworker.io/pool"
	poolTaintKey = "test.kubeworker.io/pool"
)

// addPool adds n kwok nodes labelled and tainted (NoSchedule) for pool,
// with capacity, and deletes them when the test ends.
func addPool(t *testing.T, client kubernetes.Interface, pool string, n int, capacity corev1.ResourceList) corev1.Taint {
	t.Helper()
	taint := corev1.Taint{Key: poolTaintKey, Value: pool, Effect: corev1.TaintEffectNoSchedule}
	for range n {
		node, err := cluster.AddNode(t.Context(), tc.NodeOptions{
			Labels: map[string]string{poolLabel: pool}, Taints: []corev1.Taint{taint}, Capacity: capacity,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := client.CoreV1().Nodes().Delete(context.Background(), node.Name, metav1.DeleteOptions{}); err != nil {
				t.Errorf("delete node %s: %v", node.Name, err)
			}
		})
	}
	return taint
}

// onPool makes the Job's pods ask for the pool's nodes; tolerate says
// whether they tolerate its taint.
func onPool(pool string, tolerate bool) func(*batchv1.Job) {
	return func(j *batchv1.Job) {
		spec := &j.Spec.Template.Spec
		spec.NodeSelector = map[string]string{poolLabel: pool}
		if tolerate {
			spec.Tolerations = []corev1.Toleration{{Key: poolTaintKey, Operator: corev1.TolerationOpEqual, Value: pool, Effect: corev1.TaintEffectNoSchedule}}
		}
	}
}

// scheduledWith waits until the scheduler's condition on the Job's pod
// says want (it may first try before it has seen new nodes), and
// returns the message.
func scheduledWith(t *testing.T, client kubernetes.Interface, job *batchv1.Job, want string) string {
	t.Helper()
	pod := podOf(t, client, job, "unschedulable with "+want, func(p *corev1.Pod) bool {
		c := unschedulable(p)
		return c != nil && strings.Contains(c.Message, want)
	})
	msg := unschedulable(pod).Message
	t.Logf("kube-scheduler: %s", msg)
	return msg
}

func TestE2EPendingInsufficientResourcesNamesTheResourceAndTheNodes(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	addPool(t, client, ns, 2, corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourcePods: resource.MustParse("10")})
	job := createJob(t, client, ns, runJob(nil, onPool(ns, true), func(j *batchv1.Job) {
		j.Spec.Template.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("3")}
	}))
	scheduledWith(t, client, job, "2 Insufficient cpu")
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 2 * time.Second})
	expect(t, res, Unschedulable, -1)
	d := res.Diagnosis
	if d == nil || d.Cause != CauseInsufficientResources || d.Scheduling == nil {
		t.Fatalf("Diagnosis %+v", d)
	}
	f := d.Scheduling
	// The pool's two nodes lack cpu; every other node is not the pool's.
	if !slices.Equal(f.Insufficient, []InsufficientResource{{Resource: corev1.ResourceCPU, Nodes: 2}}) || f.Nodes < 3 || f.NodeAffinity+f.UntoleratedTaint != f.Nodes-2 {
		t.Errorf("SchedulingFailure %+v", f)
	}
	if res.Outcome.Fault() != FaultInfrastructure {
		t.Errorf("fault %v", res.Outcome.Fault())
	}
}

func TestE2EPendingUntoleratedTaintNamesTheTaint(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	taint := addPool(t, client, ns, 1, nil)
	job := createJob(t, client, ns, runJob(nil, onPool(ns, false)))
	scheduledWith(t, client, job, "untolerated taint")
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 2 * time.Second})
	expect(t, res, Unschedulable, -1)
	d := res.Diagnosis
	if d == nil || d.Cause != CauseUntoleratedTaint || d.Scheduling == nil {
		t.Fatalf("Diagnosis %+v", d)
	}
	// kube-scheduler 1.37 does not print the taint; the nodes the pod
	// asks for give it.
	if f := d.Scheduling; f.UntoleratedTaint < 1 || len(f.Taints) != 1 || !f.Taints[0].MatchTaint(&taint) || f.Taints[0].Value != taint.Value {
		t.Errorf("SchedulingFailure %+v, want the taint %v", f, taint)
	}
}

func TestE2EPendingNodeSelectorMatchingNoNode(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) {
		j.Spec.Template.Spec.NodeSelector = map[string]string{poolLabel: ns + "-none"}
	}))
	scheduledWith(t, client, job, "didn't match Pod's node affinity/selector")
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 2 * time.Second})
	expect(t, res, Unschedulable, -1)
	// Other tests' tainted nodes may be counted too; no node the pod asks
	// for exists, so the selector is the cause.
	if d := res.Diagnosis; d == nil || d.Cause != CauseNodeAffinity || d.Scheduling == nil || d.Scheduling.NodeAffinity < 1 || len(d.Scheduling.Taints) != 0 {
		t.Errorf("Diagnosis %+v", d)
	}
}

func TestE2EPendingUnboundPersistentVolumeClaim(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	mount := func(claim string) func(*batchv1.Job) {
		return func(j *batchv1.Job) {
			j.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}}
		}
	}
	t.Run("unbound", func(t *testing.T) {
		t.Parallel()
		// No storage class and no volume controller: it stays Pending.
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "scratch"},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		}
		if _, err := client.CoreV1().PersistentVolumeClaims(ns).Create(t.Context(), pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		job := createJob(t, client, ns, runJob(nil, mount("scratch")))
		scheduledWith(t, client, job, "unbound immediate PersistentVolumeClaims")
		res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 2 * time.Second})
		expect(t, res, Unschedulable, -1)
		if d := res.Diagnosis; d == nil || d.Cause != CauseUnboundClaim || d.Scheduling == nil ||
			d.Scheduling.Claims != "pod has unbound immediate PersistentVolumeClaims" || !slices.Equal(d.Scheduling.ClaimNames, []string{"scratch"}) {
			t.Errorf("Diagnosis %+v", d)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		job := createJob(t, client, ns, runJob(nil, mount("nowhere")))
		scheduledWith(t, client, job, "not found")
		res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: 2 * time.Second})
		expect(t, res, Unschedulable, -1)
		if d := res.Diagnosis; d == nil || d.Cause != CauseUnboundClaim || d.Scheduling == nil || !slices.Equal(d.Scheduling.ClaimNames, []string{"nowhere"}) {
			t.Errorf("Diagnosis %+v", d)
		}
	})
}

// The pod start timeout of the CannotCreatePod tests is far longer than
// the test's own bound (e2eTimeout): a Result at all shows that Wait did
// not wait for it.
const noPodStartTimeout = time.Hour

func TestE2EPendingQuotaEndsAtOnceAsCannotCreatePod(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-pods"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("0")}},
	}
	if _, err := client.CoreV1().ResourceQuotas(ns).Create(t.Context(), quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Admission enforces a quota once its controller has filled in the
	// status; until then it refuses with "status unknown", a quota too.
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		q, err := client.CoreV1().ResourceQuotas(ns).Get(ctx, "no-pods", metav1.GetOptions{})
		return err == nil && q.Status.Hard != nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	job := createJob(t, client, ns, runJob(nil))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: noPodStartTimeout})
	expect(t, res, CannotCreatePod, -1)
	d := res.Diagnosis
	if d == nil || d.Cause != CauseQuota || d.Quota != "no-pods" || d.Reason != "FailedCreate" || !strings.Contains(d.Message, "exceeded quota: no-pods") {
		t.Errorf("Diagnosis %+v", d)
	}
	if res.Pod != "" || res.Outcome.Fault() != FaultInfrastructure {
		t.Errorf("Pod %q, fault %v", res.Pod, res.Outcome.Fault())
	}
}

func TestE2EPendingMissingServiceAccountEndsAtOnceAsCannotCreatePod(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	// Admission refuses a pod whose service account does not exist; the
	// Job controller records FailedCreate and tries again, forever.
	job := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) { j.Spec.Template.Spec.ServiceAccountName = "missing" }))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: noPodStartTimeout})
	expect(t, res, CannotCreatePod, -1)
	if d := res.Diagnosis; d == nil || d.Cause != CauseServiceAccount || d.ServiceAccount != "missing" || d.Reason != "FailedCreate" || len(d.Events) == 0 {
		t.Errorf("Diagnosis %+v", res.Diagnosis)
	}
	if res.Pod != "" {
		t.Errorf("Pod %q, want none", res.Pod)
	}
}

func TestE2EPendingPodSecurityEndsAtOnceAsCannotCreatePod(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	patch := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}}`)
	if _, err := client.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	job := createJob(t, client, ns, runJob(nil))
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{PodStartTimeout: noPodStartTimeout})
	expect(t, res, CannotCreatePod, -1)
	if d := res.Diagnosis; d == nil || d.Cause != CausePodSecurity || !strings.Contains(d.Message, `violates PodSecurity "restricted:latest"`) {
		t.Errorf("Diagnosis %+v", res.Diagnosis)
	}
}

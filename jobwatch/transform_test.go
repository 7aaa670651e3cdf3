package jobwatch

import (
	"reflect"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kubeworker/kubeworker/manifest"
)

func trimmed(t *testing.T, obj any) any {
	t.Helper()
	out, err := trimmer(Options{}.selector())(obj)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTrimKeepsWhatClassifyReadsAndDropsTheRest(t *testing.T) {
	full := func(p *corev1.Pod) {
		p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
		p.Annotations = map[string]string{"big": "annotation"}
		p.Labels["team"] = "a"
		p.Spec.Containers[0].Image = "example.com/run:1"
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SECRET", Value: "x"}}
		p.Status.ContainerStatuses[0].Image = "example.com/run:1"
		p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: corev1.ConditionFalse})
	}
	pods := []*corev1.Pod{
		testPod("p1", 1, running, exited("main", 1, "Error"), full),
		testPod("p2", 5, running, evictedPod, full),
	}
	job := testJob(withBackoffLimit(1), withCounts(0, 2), withCondition(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded), func(j *batchv1.Job) {
		j.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kube-controller-manager"}}
		j.Spec.Template.Labels["team"] = "a"
	})
	tj := trimmed(t, job).(*batchv1.Job)
	var tp []*corev1.Pod
	for _, p := range pods {
		tp = append(tp, trimmed(t, p).(*corev1.Pod))
	}
	want, _ := Classify(job, pods, "")
	got, _ := Classify(tj, tp, "")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Classify of trimmed objects = %+v\nwant %+v", got, want)
	}
	p := tp[1]
	if p.ManagedFields != nil || p.Annotations != nil || p.Labels["team"] != "" || p.Spec.Containers[0].Image != "" ||
		p.Spec.Containers[0].Env != nil || p.Status.ContainerStatuses[0].Image != "" || len(p.Status.Conditions) != 1 {
		t.Errorf("trimmed pod keeps too much: %+v", p)
	}
	if podJobName(p) != "run-1" || !podOfJob(p, "job-uid") {
		t.Errorf("trimmed pod lost its Job")
	}
	if tj.ManagedFields != nil || !reflect.DeepEqual(tj.Spec.Template.Labels, map[string]string{manifest.LabelManagedBy: manifest.ManagedBy}) {
		t.Errorf("trimmed Job keeps %+v", tj)
	}
	if !reflect.DeepEqual(trimmed(t, tj), tj) || !reflect.DeepEqual(trimmed(t, p), p) {
		t.Errorf("trimming is not idempotent")
	}
}

func TestTrimForAnEmptySelectorKeepsNoTemplateLabels(t *testing.T) {
	out, _ := trimmer(labels.Everything())(testJob())
	if l := out.(*batchv1.Job).Spec.Template.Labels; l != nil {
		t.Errorf("template labels %v", l)
	}
	if other, _ := trimmer(labels.Everything())("not a Kubernetes object"); other != "not a Kubernetes object" {
		t.Errorf("other objects must pass unchanged")
	}
}

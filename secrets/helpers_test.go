package secrets_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

const (
	testNS    = "team-a"
	testRunID = "0b7c1f3e-2f44-4a0e-8a53-7f1d9a2f6c11"
	apiKey    = "pnu_s3cr3t-api-key-value"
)

var secretsGR = schema.GroupResource{Resource: "secrets"}

// Retry policies for tests: short waits (never asserted), and none.
var (
	fast    = retry.Policy{Initial: time.Millisecond, Max: 10 * time.Millisecond}
	noRetry = retry.Policy{Attempts: 1}
)

// testJob returns a prepared-looking Job in testNS with the run-ID label
// and containers named as given, the first holding env.
func testJob(env []corev1.EnvVar, containers ...string) *batchv1.Job {
	if len(containers) == 0 {
		containers = []string{"main"}
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "etl-",
			Namespace:    testNS,
			Labels:       map[string]string{manifest.LabelRunID: testRunID, manifest.LabelManagedBy: manifest.ManagedBy},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}}},
	}
	for _, name := range containers {
		job.Spec.Template.Spec.Containers = append(job.Spec.Template.Spec.Containers, corev1.Container{Name: name, Image: "busybox"})
	}
	job.Spec.Template.Spec.Containers[0].Env = env
	return job
}

func plain(name, value string) corev1.EnvVar { return corev1.EnvVar{Name: name, Value: value} }

func fieldRef(name string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}
}

func secret(name string, labels map[string]string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Labels: labels}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func getSecret(t *testing.T, client *fake.Clientset, name string) *corev1.Secret {
	t.Helper()
	s, err := client.CoreV1().Secrets(testNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get secret %s: %v", name, err)
	}
	return s
}

func secretGone(t *testing.T, client *fake.Clientset, name string) bool {
	t.Helper()
	_, err := client.CoreV1().Secrets(testNS).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("get secret %s: %v", name, err)
	}
	return apierrors.IsNotFound(err)
}

// count returns how many calls of verb on secrets the client saw.
func count(client *fake.Clientset, verb string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.Matches(verb, "secrets") {
			n++
		}
	}
	return n
}

// failTimes makes the next n calls of verb on secrets fail with err, then
// lets them through; it returns the number of calls that failed so far.
func failTimes(client *fake.Clientset, verb string, n int32, err error) *atomic.Int32 {
	var failed atomic.Int32
	client.PrependReactor(verb, "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failed.Load() < n {
			failed.Add(1)
			return true, nil, err
		}
		return false, nil, nil
	})
	return &failed
}

func conflict(name string) error {
	return apierrors.NewConflict(secretsGR, name, errors.New("the object has been modified"))
}

func errorsJoin(errs ...error) error { return errors.Join(errs...) }

func metav1GetOptions() metav1.GetOptions { return metav1.GetOptions{} }

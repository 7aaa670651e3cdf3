package jobcreate

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/internal/jobtest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/retry"
)

func adminClient(t testing.TB) kubernetes.Interface { return jobtest.Client(t, cluster.Config()) }

func proxiedClient(t *testing.T) kubernetes.Interface {
	return jobtest.Client(t, cluster.ProxyConfig())
}

func preparedJob(t *testing.T, ns, runID string, values map[string]any) *batchv1.Job {
	return jobtest.Prepared(t, ns, runID, values)
}

func jobsPerRun(t *testing.T, ns string) map[string]int {
	return jobtest.JobsPerRun(t, adminClient(t), ns)
}

func TestDefaultTemplateWithNoValuesIsAcceptedByTheAPIServer(t *testing.T) {
	ns := cluster.NewNamespace(t)
	cfg, err := manifest.Default().Render(nil, manifest.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cfg.Prepare(manifest.Run{ID: "default-no-values"}, manifest.PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Namespace != "default" {
		t.Fatalf("namespace %q, want default", job.Namespace)
	}
	job.Namespace = ns // keep the shared default namespace clean
	client := adminClient(t)
	if _, err := client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("server dry run refused the default Job: %v", err)
	}
	created, err := client.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the API server refused the default Job: %v", err)
	}
	if !strings.HasPrefix(created.Name, manifest.DefaultGenerateName) {
		t.Errorf("name %q, want the default prefix %q", created.Name, manifest.DefaultGenerateName)
	}
}

// TestCreateMakesExactlyOneJobPerRunWhenEveryAnswerIsLost sends 100 runs
// through the fault proxy, which lets each first Create reach the API
// server and then drops the connection before the answer: an ambiguous
// failure every time. Every run must end with exactly one Job.
func TestCreateMakesExactlyOneJobPerRunWhenEveryAnswerIsLost(t *testing.T) {
	const runs = 100
	ns := cluster.NewNamespace(t)
	creator := New(proxiedClient(t), Options{Retry: fastRetry})
	before := cluster.Proxy().Stats()
	isJobCreate := func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/jobs")
	}
	for i := range runs {
		cluster.Proxy().CutNextAfterResponse(isJobCreate)
		runID := fmt.Sprintf("lost-answer-%03d", i)
		job, err := creator.Create(t.Context(), preparedJob(t, ns, runID, nil))
		if err != nil {
			t.Fatalf("run %s: %v", runID, err)
		}
		if job.Labels[manifest.LabelRunID] != runID {
			t.Fatalf("run %s got Job %s of run %s", runID, job.Name, job.Labels[manifest.LabelRunID])
		}
	}
	cut := cluster.Proxy().Stats().CutRequests - before.CutRequests
	jobs := jobsPerRun(t, ns)
	t.Logf("%d runs, %d Creates answered by the API server and then cut, %d Jobs", runs, cut, len(jobs))
	if cut != runs {
		t.Errorf("the proxy cut %d Creates, want %d", cut, runs)
	}
	assertOneJobPerRun(t, jobs, runs)
}

// TestCreateMakesExactlyOneJobPerRunWhileConnectionsAreCut creates 100 runs,
// 10 at a time, while the proxy cuts every connection every 60 ms. With
// HTTP/2 one cut drops all requests in flight, before or after the server
// saw them.
func TestCreateMakesExactlyOneJobPerRunWhileConnectionsAreCut(t *testing.T) {
	const runs = 100
	ns := cluster.NewNamespace(t)
	creator := New(proxiedClient(t), Options{Retry: fastRetry})
	before := cluster.Proxy().Stats()
	stop := make(chan struct{})
	var cutter sync.WaitGroup
	cutter.Add(1)
	go func() {
		defer cutter.Done()
		tick := time.NewTicker(60 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				cluster.Proxy().CutAll()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, runs)
	sem := make(chan struct{}, 10)
	for i := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := creator.Create(t.Context(), preparedJob(t, ns, fmt.Sprintf("cut-storm-%03d", i), nil))
			errs <- err
		}()
	}
	wg.Wait()
	close(stop)
	cutter.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	jobs := jobsPerRun(t, ns)
	t.Logf("%d runs, %d connections cut, %d Jobs", runs, cluster.Proxy().Stats().CutConnections-before.CutConnections, len(jobs))
	assertOneJobPerRun(t, jobs, runs)
}

func TestCreateErrorsCarryAHintFromTheRealAPIServer(t *testing.T) {
	t.Run("quota exceeded", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		quota := &corev1.ResourceQuota{
			ObjectMeta: metav1.ObjectMeta{Name: "no-jobs"},
			Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}},
		}
		if _, err := adminClient(t).CoreV1().ResourceQuotas(ns).Create(t.Context(), quota, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := createUntilSettled(t, adminClient(t), preparedJob(t, ns, "quota", nil), func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "exceeded quota")
		})
		assertHint(t, err, apierrors.IsForbidden, "ResourceQuota")
	})
	t.Run("forbidden by RBAC", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		cfg, err := cluster.UserConfig("no-rights")
		if err != nil {
			t.Fatal(err)
		}
		client, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = New(client, Options{}).Create(t.Context(), preparedJob(t, ns, "rbac", nil))
		assertHint(t, err, apierrors.IsForbidden, "kubectl auth can-i create jobs -n "+ns)
	})
	t.Run("missing namespace", func(t *testing.T) {
		_, err := New(adminClient(t), Options{}).Create(t.Context(), preparedJob(t, "no-such-namespace", "ns", nil))
		assertHint(t, err, apierrors.IsNotFound, `namespace "no-such-namespace" does not exist`)
	})
	t.Run("an invalid Job is not retried", func(t *testing.T) {
		ns := cluster.NewNamespace(t)
		job := preparedJob(t, ns, "invalid", nil)
		job.Spec.Template.Spec.Containers[0].Name = "Not_A_DNS_Label"
		_, err := New(adminClient(t), Options{Retry: retry.Policy{Initial: time.Hour}}).Create(t.Context(), job)
		var ce *Error
		if !errors.As(err, &ce) || !apierrors.IsInvalid(err) || ce.Attempts != 1 {
			t.Fatalf("got %v, want one attempt ending in Invalid", err)
		}
	})
}

// createUntilSettled creates job until settled(err): a new quota takes a
// moment before the API server enforces it.
func createUntilSettled(t *testing.T, client kubernetes.Interface, job *batchv1.Job, settled func(error) bool) error {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		j := job.DeepCopy()
		j.Labels[manifest.LabelRunID] = fmt.Sprintf("%s-%d", job.Labels[manifest.LabelRunID], i)
		_, err := New(client, Options{Retry: retry.Policy{Attempts: 1}}).Create(t.Context(), j)
		if settled(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func assertHint(t *testing.T, err error, is func(error) bool, hint string) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || !is(err) {
		t.Errorf("the API status is not reachable or of the wrong kind: %v", err)
	}
	if !strings.Contains(ce.Hint, hint) {
		t.Errorf("hint %q does not contain %q (error: %v)", ce.Hint, hint, err)
	}
	t.Logf("%v", err)
}

// TestCreateAdoptsTheRunsJobOnlyWhenMadeFromTheSameSpec is checked
// adoption on the API server: a second creation for a run adopts the
// run's Job when it comes from the same template and values, and is
// refused with ErrDuplicateRun, creating nothing, when it does not.
func TestCreateAdoptsTheRunsJobOnlyWhenMadeFromTheSameSpec(t *testing.T) {
	ns := cluster.NewNamespace(t)
	creator := New(adminClient(t), Options{Retry: fastRetry})
	first, err := creator.Create(t.Context(), preparedJob(t, ns, "adopt-1", nil))
	if err != nil {
		t.Fatal(err)
	}
	onlyTheFirst := func(t *testing.T) {
		t.Helper()
		list, err := adminClient(t).BatchV1().Jobs(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].UID != first.UID || list.Items[0].Annotations[AnnotationSpecHash] != first.Annotations[AnnotationSpecHash] {
			t.Errorf("the namespace holds %d Jobs, want only the first one", len(list.Items))
		}
	}

	t.Run("same template: adopted", func(t *testing.T) {
		again, err := creator.Create(t.Context(), preparedJob(t, ns, "adopt-1", nil))
		if err != nil {
			t.Fatal(err)
		}
		if again.UID != first.UID {
			t.Errorf("got Job %s (%s), want the first one %s (%s)", again.Name, again.UID, first.Name, first.UID)
		}
		onlyTheFirst(t)
	})
	wantDuplicate := func(t *testing.T, err error) {
		t.Helper()
		var ce *Error
		if !errors.Is(err, ErrDuplicateRun) || !errors.As(err, &ce) || ce.RunID != "adopt-1" {
			t.Fatalf("got %v, want a *Error matching ErrDuplicateRun", err)
		}
		t.Log(err)
	}
	t.Run("another spec under the same name: refused", func(t *testing.T) {
		_, err := creator.Create(t.Context(), preparedJob(t, ns, "adopt-1", map[string]any{"backoff_limit": 2}))
		wantDuplicate(t, err)
		onlyTheFirst(t)
	})

	// The Worker's Watcher is the Finder: it names the run's Jobs from its
	// shared stream, whatever their names.
	watcher := jobwatch.New(adminClient(t), jobwatch.Options{})
	defer watcher.Close()
	finding := New(adminClient(t), Options{Retry: fastRetry, Finder: watcher})
	renamed := func(values map[string]any) *batchv1.Job {
		job := preparedJob(t, ns, "adopt-1", values)
		job.GenerateName = "renamed-"
		return job
	}
	t.Run("another template that names the Job otherwise: refused", func(t *testing.T) {
		_, err := finding.Create(t.Context(), renamed(map[string]any{"backoff_limit": 2}))
		wantDuplicate(t, err)
		onlyTheFirst(t)
	})
	t.Run("same spec under another name: adopted", func(t *testing.T) {
		again, err := finding.Create(t.Context(), renamed(nil))
		if err != nil {
			t.Fatal(err)
		}
		if again.UID != first.UID {
			t.Errorf("got Job %s, want the first one %s", again.Name, first.Name)
		}
		onlyTheFirst(t)
	})
}

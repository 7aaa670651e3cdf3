package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/jobcreate"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/manifest"
)

// TestNewRefusesASettingOfAReplacedPart: a setting that tunes a default
// part is never silently ignored when that part is given.
func TestNewRefusesASettingOfAReplacedPart(t *testing.T) {
	f := &fakeParts{}
	cases := []struct {
		name string
		opts Options
		says string
	}{
		{"Create with a Creator", Options{Create: jobcreate.Options{Finder: nil, Retry: fastRetry}, Parts: Parts{Creator: f}}, "Options.Create tunes the default Creator"},
		{"Prepare with a Preparer", Options{Prepare: manifest.PrepareOptions{Image: "x"}, Parts: Parts{Preparer: f}}, "Options.Prepare tunes the default Preparer"},
		{"Template with a Preparer", Options{Template: manifest.Default(), Parts: Parts{Preparer: f}}, "Options.Template"},
		{"Render with a Preparer", Options{Render: manifest.RenderOptions{AllowMissingEnv: true}, Parts: Parts{Preparer: f}}, "Options.Render"},
		{"Secrets with a Store", Options{Secrets: SecretsOptions{APIKey: true}, Parts: Parts{Store: f}}, "Options.Secrets"},
		{"LogTailLines with a Waiter", Options{LogTailLines: 5, Parts: Parts{Waiter: fakeWaiter{f}}}, "Options.LogTailLines"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(fake.NewClientset(), c.opts)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("got %v, want an error saying %q", err, c.says)
			}
		})
	}
	if _, err := New(fake.NewClientset(), Options{Parts: Parts{Creator: f}, Prepare: manifest.PrepareOptions{Image: "x"}}); err != nil {
		t.Errorf("a setting of a default part that is kept: %v", err)
	}
}

// TestNamespaceIsANamespace: Options.Namespace is where Jobs go, with any
// template, and never reaches the template as a value.
func TestNamespaceIsANamespace(t *testing.T) {
	tmpl, err := manifest.Load([]byte(`
job_configuration:
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    metadata: {generateName: etl-}
    spec: {template: {spec: {restartPolicy: Never, containers: [{name: main, image: "{{ image }}"}]}}}
variables:
  required: [image]
  properties:
    image: {type: string}
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Template: tmpl, Namespace: "team-a"}
	p := &templatePreparer{opts: &opts}
	job, cfg, err := p.Prepare(t.Context(), RunSpec{ID: "r-1", Values: map[string]any{"image": "busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	if job.Namespace != "team-a" || cfg.Namespace != "team-a" {
		t.Errorf("Job in %q (Config %q), want team-a", job.Namespace, cfg.Namespace)
	}
	// A run's own namespace value wins, with a template that has one.
	opts = Options{Template: manifest.Default(), Namespace: "team-a"}
	p = &templatePreparer{opts: &opts}
	job, _, err = p.Prepare(t.Context(), RunSpec{ID: "r-2", Values: map[string]any{"namespace": "team-b"}})
	if err != nil || job.Namespace != "team-b" {
		t.Errorf("Job in %q (%v), want the run's team-b", job.Namespace, err)
	}
	// Start, List and Sweep look there without rendering the template,
	// which needs a value here.
	w, err := New(fake.NewClientset(), Options{Template: tmpl, Namespace: "team-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	if nss, err := w.namespaces(w.clusters.own); err != nil || len(nss) != 1 || nss[0] != "team-a" {
		t.Errorf("namespaces %v, %v; want [team-a]", nss, err)
	}
}

// TestRenderOptionsReachTheTemplate: Options.Render is how a Worker's
// template reads the environment.
func TestRenderOptionsReachTheTemplate(t *testing.T) {
	tmpl, err := manifest.Load([]byte(`
job_configuration:
  job_manifest:
    apiVersion: batch/v1
    kind: Job
    metadata: {annotations: {home: "{{ $HOME_DIR }}"}}
    spec: {template: {spec: {restartPolicy: Never, containers: [{name: main}]}}}
variables: {}
`))
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Template: tmpl}
	p := &templatePreparer{opts: &opts}
	if _, _, err := p.Prepare(t.Context(), RunSpec{ID: "r"}); err == nil || !strings.Contains(err.Error(), "HOME_DIR") {
		t.Errorf("without a lookup: %v, want an error naming HOME_DIR", err)
	}
	opts.Render.LookupEnv = func(name string) (string, bool) { return "/home/w", name == "HOME_DIR" }
	job, _, err := p.Prepare(t.Context(), RunSpec{ID: "r"})
	if err != nil || job.Annotations["home"] != "/home/w" {
		t.Errorf("annotations %v, %v; want home=/home/w", job.Annotations, err)
	}
}

// TestOneClosedError: a Run that Close ends returns ErrClosed, whichever
// part noticed, and still matches the part's own error.
func TestOneClosedError(t *testing.T) {
	cs := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system", UID: "u"}})
	w, err := New(cs, Options{Namespace: "ns", Parts: Parts{Creator: JobCreatorFunc(func(_ context.Context, j *batchv1.Job) (*batchv1.Job, error) {
		j = j.DeepCopy()
		j.Name = "held-1"
		return cs.BatchV1().Jobs(j.Namespace).Create(context.Background(), j, metav1.CreateOptions{})
	})}})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := w.Run(t.Context(), RunSpec{ID: "held", Started: func(clusterid.PID) { close(started) }})
		done <- err
	}()
	<-started
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, ErrClosed) || !errors.Is(err, jobwatch.ErrClosed) {
		t.Errorf("Run ended by Close: %v, want ErrClosed (wrapping jobwatch.ErrClosed)", err)
	}
	if _, err := w.Run(t.Context(), RunSpec{ID: "late"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestARefusedCreateIsReportedOnce: the store's done callback does not
// repeat the creation's error.
func TestARefusedCreateIsReportedOnce(t *testing.T) {
	refusal := errors.New("admission webhook said no")
	w, err := New(nil, Options{Parts: Parts{
		Creator:  JobCreatorFunc(func(context.Context, *batchv1.Job) (*batchv1.Job, error) { return nil, refusal }),
		Identity: fixedPIDs{},
		Waiter: JobWaiterFunc(func(context.Context, jobwatch.JobRef, jobwatch.WaitOptions) (jobwatch.Result, error) {
			return jobwatch.Result{}, nil
		}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	_, err = w.Run(t.Context(), RunSpec{ID: "r"})
	if !errors.Is(err, refusal) || strings.Count(err.Error(), refusal.Error()) != 1 {
		t.Errorf("got %q, want the refusal once", err)
	}
}

type fixedPIDs struct{}

func (fixedPIDs) PID(_ context.Context, ns, name string) (clusterid.PID, error) {
	return clusterid.PID{ClusterUID: "u", Namespace: ns, Name: name}, nil
}

func (fixedPIDs) Kill(context.Context, clusterid.PID, time.Duration) error { return nil }

package jobwatch

import (
	"context"
	"errors"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	tc "github.com/kubeworker/kubeworker/clustertest"
)

// End-to-end tests of how Wait finds the run container, the Job and its
// events.

func TestE2ERunContainerIsFoundByNameWhenASidecarComesFirst(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationExitCode + ".main": "5"}, func(j *batchv1.Job) {
		spec := &j.Spec.Template.Spec
		spec.Containers = append([]corev1.Container{{Name: "sidecar", Image: "example.com/proxy:1"}}, spec.Containers...)
	}))
	w := newWatcher(t, cluster.Config())
	res := waitJob(t, w, job, WaitOptions{Container: "main"})
	expect(t, res, Failed, 5)
	if res.Container != "main" {
		t.Errorf("Container %q", res.Container)
	}
	// Without a name, the first container counts, as documented.
	res = waitJob(t, w, job, WaitOptions{})
	if res.Container != "sidecar" || res.ExitCode != 0 {
		t.Errorf("without a name: container %q exit code %d, want sidecar 0", res.Container, res.ExitCode)
	}
}

func TestE2EAJobThatEndedBeforeWaitBeganIsSeen(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationExitCode: "4"}))
	podOf(t, client, job, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	// A Watcher of another process, started after the end.
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{})
	expect(t, res, Failed, 4)
}

func TestE2EWaitRefusesAJobItCannotFollow(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	w := newWatcher(t, cluster.Config())
	// The API server gives a Job without labels its template's labels.
	unlabelled := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) { j.Labels, j.Spec.Template.Labels = nil, nil }))
	if _, err := w.Wait(t.Context(), JobRef{Namespace: ns, Name: unlabelled.Name}, WaitOptions{}); !errors.Is(err, ErrNotSelected) {
		t.Errorf("unlabelled Job: %v, want ErrNotSelected", err)
	}
	// Its pods would be invisible to the pod stream.
	bare := createJob(t, client, ns, runJob(nil, func(j *batchv1.Job) { j.Spec.Template.Labels = nil }))
	if _, err := w.Wait(t.Context(), JobRef{Namespace: ns, Name: bare.Name}, WaitOptions{}); !errors.Is(err, ErrNotSelected) {
		t.Errorf("Job with an unlabelled pod template: %v, want ErrNotSelected", err)
	}
	if _, err := w.Wait(t.Context(), JobRef{Namespace: ns, Name: "no-such-job"}, WaitOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing Job: %v, want ErrNotFound", err)
	}
	good := createJob(t, client, ns, runJob(nil))
	if _, err := w.Wait(t.Context(), JobRef{Namespace: ns, Name: good.Name}, WaitOptions{Container: "nope"}); !errors.Is(err, ErrContainerNotFound) {
		t.Errorf("missing container: %v, want ErrContainerNotFound", err)
	}
}

func TestE2EEventsReportEachPhaseOnceWithStableIDs(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h", tc.AnnotationExitCode: "0"}))
	w := newWatcher(t, cluster.Config())
	var first recorder
	ch := asyncWait(w, job, WaitOptions{Events: &first})
	pod := podOf(t, client, job, "Running", isRunning)
	waitUntil(t, "the Running event", func() bool {
		return len(first.all()) > 0 && first.all()[len(first.all())-1].Phase == corev1.PodRunning
	})
	setDelay(t, client, pod, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)
	events := first.all()
	phases := []corev1.PodPhase{}
	for i, e := range events {
		phases = append(phases, e.Phase)
		if e.Pod != pod.Name || e.Job != job.Name || e.ID == "" || e.Time.IsZero() {
			t.Errorf("event %d: %+v", i, e)
		}
		if i > 0 && e.PrevID != events[i-1].ID {
			t.Errorf("event %d does not point to the one before", i)
		}
	}
	if n := len(phases); n < 2 || phases[n-2] != corev1.PodRunning || phases[n-1] != corev1.PodSucceeded || events[n-1].Reason != "Completed" {
		t.Errorf("phases %v", phases)
	}
	// A later Wait on the same Job replays the final phase with the same ID.
	var again recorder
	waitJob(t, w, job, WaitOptions{Events: &again})
	replay := again.all()
	if len(replay) == 0 || replay[len(replay)-1].ID != events[len(events)-1].ID {
		t.Errorf("replay %+v does not end with ID %s", replay, events[len(events)-1].ID)
	}
}

func TestE2EPodPhasesWithReasonsAreEvents(t *testing.T) {
	t.Parallel()
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationEvict: "The node was low on resource: memory."}))
	var rec recorder
	res := waitJob(t, newWatcher(t, cluster.Config()), job, WaitOptions{Events: &rec})
	expect(t, res, Evicted, 137)
	events := rec.all()
	if len(events) == 0 || events[len(events)-1].Phase != corev1.PodFailed || events[len(events)-1].Reason != "Evicted" {
		t.Errorf("events %+v", events)
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s", what)
		case <-t.Context().Done():
			t.Fatalf("waiting for %s", what)
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
}

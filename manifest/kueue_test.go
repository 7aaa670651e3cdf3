package manifest

import (
	"strings"
	"testing"
)

func TestQueueNameSuspendsTheJobAndLabelsIt(t *testing.T) {
	cfg, err := Default().Render(map[string]any{"queue_name": "team-a", "priority_class": "high"}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := cfg.Prepare(Run{ID: "r1"}, PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := job.Labels[LabelQueueName]; got != "team-a" {
		t.Errorf("queue label %q, want team-a", got)
	}
	if got := job.Labels[LabelPriorityClass]; got != "high" {
		t.Errorf("priority label %q, want high", got)
	}
	if job.Spec.Suspend == nil || !*job.Spec.Suspend {
		t.Error("a queued Job must be created suspended")
	}
	for _, k := range []string{LabelQueueName, LabelPriorityClass} {
		if _, ok := job.Spec.Template.Labels[k]; ok {
			t.Errorf("pod template has %s: Kueue's labels belong on the Job only", k)
		}
	}
	if job.Spec.Template.Labels[LabelRunID] != "r1" {
		t.Error("the pod template lost the run labels")
	}

	plain, err := Default().Render(nil, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err = plain.Prepare(Run{ID: "r2"}, PrepareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if job.Spec.Suspend != nil || job.Labels[LabelQueueName] != "" || job.Labels[LabelPriorityClass] != "" {
		t.Errorf("no queue: suspend %v, labels %v", job.Spec.Suspend, job.Labels)
	}
}

func TestQueueNameMustBeAKueueName(t *testing.T) {
	for _, bad := range []string{"Team A", "team_a", strings.Repeat("q", 64)} {
		_, err := Default().Render(map[string]any{"queue_name": bad}, RenderOptions{})
		if err == nil || !strings.Contains(err.Error(), "job_configuration.queue_name") {
			t.Errorf("queue_name %q: %v, want an error naming job_configuration.queue_name", bad, err)
		}
	}
}

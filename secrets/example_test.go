package secrets_test

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/secrets"
)

func ExampleAPIKeySecretName() {
	name, err := secrets.APIKeySecretName("ETL Worker #1")
	fmt.Println(name, err)
	// Output: kubeworker-etl-worker-1-api-key <nil>
}

func ExampleRunSecretName() {
	for _, id := range []string{"0b7c1f3e-2f44-4a0e-8a53-7f1d9a2f6c11", "Run_1", "run-1"} {
		name, _ := secrets.RunSecretName(id)
		fmt.Println(name)
	}
	// Output:
	// kubeworker-run-0b7c1f3e-2f44-4a0e-8a53-7f1d9a2f6c11-env
	// kubeworker-run-run-1.f3a089d7fd-env
	// kubeworker-run-run-1-env
}

// The API key moves into the worker's Secret; the Job only references it.
func ExampleManager_ReplaceAPIKey() {
	ctx := context.Background()
	cfg, _ := manifest.Default().Render(map[string]any{"namespace": "team-a"}, manifest.RenderOptions{})
	job, _ := cfg.Prepare(manifest.Run{ID: "run-7", Env: map[string]string{"KUBEWORKER_API_KEY": "s3cr3t"}}, manifest.PrepareOptions{})

	m := secrets.New(fake.NewClientset(), secrets.Options{WorkerName: "etl-worker"})
	defer m.Close(ctx)
	if _, err := m.ReplaceAPIKey(ctx, job); err != nil {
		panic(err)
	}
	e := job.Spec.Template.Spec.Containers[0].Env[0]
	fmt.Printf("%s from Secret %s, key %s; value in the Job: %q\n", e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key, e.Value)
	fmt.Println(m.Tracked())
	// Output:
	// KUBEWORKER_API_KEY from Secret kubeworker-etl-worker-api-key, key value; value in the Job: ""
	// [team-a/kubeworker-etl-worker-api-key]
}

// Every plain env value of a run moves into a Secret that the Job owns.
func ExampleManager_PrepareRun() {
	ctx := context.Background()
	client := fake.NewClientset()
	cfg, _ := manifest.Default().Render(map[string]any{"namespace": "team-a"}, manifest.RenderOptions{})
	job, _ := cfg.Prepare(manifest.Run{ID: "run-7", Env: map[string]string{"DB_PASSWORD": "hunter2", "TZ": "UTC"}}, manifest.PrepareOptions{})

	m := secrets.New(client, secrets.Options{})
	rs, err := m.PrepareRun(ctx, job)
	if err != nil {
		panic(err)
	}
	defer rs.Discard(ctx) // does nothing once Adopt has succeeded

	job.Name = "run-7-job" // a fake clientset does not generate names
	created, err := client.BatchV1().Jobs(job.Namespace).Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		panic(err)
	}
	created.UID = "0b7c1f3e" // nor UIDs
	if err := rs.Adopt(ctx, created); err != nil {
		panic(err)
	}

	c := created.Spec.Template.Spec.Containers[0]
	fmt.Println("env left in the Job:", len(c.Env))
	fmt.Println("envFrom:", c.EnvFrom[0].SecretRef.Name)
	s, _ := client.CoreV1().Secrets("team-a").Get(ctx, rs.Name(), metav1.GetOptions{})
	fmt.Println("owner:", s.OwnerReferences[0].Kind, s.OwnerReferences[0].Name)
	fmt.Println("tracked:", m.Tracked())
	// Output:
	// env left in the Job: 0
	// envFrom: kubeworker-run-run-7-env
	// owner: Job run-7-job
	// tracked: []
}

package clusterid_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubeworker/kubeworker/clusterid"
)

func ExamplePID_String() {
	pid := clusterid.PID{ClusterUID: "6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11", Namespace: "default", Name: "etl-x7k2p"}
	fmt.Println(pid)
	// Output: 6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11:default:etl-x7k2p
}

func ExampleParsePID() {
	pid, err := clusterid.ParsePID("6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11:default:etl-x7k2p")
	if err != nil {
		panic(err)
	}
	fmt.Println(pid.ClusterUID)
	fmt.Println(pid.Namespace)
	fmt.Println(pid.Name)
	// Output:
	// 6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11
	// default
	// etl-x7k2p
}

func ExampleParsePID_malformed() {
	for _, s := range []string{"default:etl-x7k2p", ":default:etl-x7k2p", "uid:Default:etl-x7k2p", "uid:default:etl:x7k2p"} {
		_, err := clusterid.ParsePID(s)
		var pe *clusterid.PIDError
		if errors.As(err, &pe) {
			fmt.Printf("%s: %s\n", s, pe.Part)
		}
	}
	// Output:
	// default:etl-x7k2p: pid
	// :default:etl-x7k2p: cluster UID
	// uid:Default:etl-x7k2p: namespace
	// uid:default:etl:x7k2p: job name
}

func ExampleCluster_UID() {
	// A fake clientset stands in for a real one here.
	client := fake.NewClientset(kubeSystem("6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11"))
	ids := clusterid.New(client, clusterid.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	uid, err := ids.UID(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println(uid)
	// Output: 6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11
}

func ExampleCluster_Kill() {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "etl-x7k2p"}}
	client := fake.NewClientset(job)
	ids := clusterid.New(client, clusterid.Options{UID: "6b1b7a4e-6c43-4c8e-9a8e-0e5f3b9f2a11"})
	ctx := context.Background()

	pid, _ := ids.PID(ctx, "default", "etl-x7k2p")
	fmt.Println(ids.Kill(ctx, pid, 30*time.Second))

	err := ids.Kill(ctx, pid, 30*time.Second)
	fmt.Println(errors.Is(err, clusterid.ErrNotFound))

	pid.ClusterUID = "another-cluster"
	err = ids.Kill(ctx, pid, 30*time.Second)
	fmt.Println(errors.Is(err, clusterid.ErrWrongCluster))
	// Output:
	// <nil>
	// true
	// true
}

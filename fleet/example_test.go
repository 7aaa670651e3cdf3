package fleet_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/fleet"
)

// A replica joins the fleet, follows it, and leaves on SIGTERM. It needs
// a cluster, so it has no output to check.
func ExampleJoin() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatal(err)
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	joinCtx, cancel := context.WithTimeout(ctx, time.Minute)
	m, err := fleet.Join(joinCtx, client, fleet.Options{Namespace: "jobs", Worker: "etl"})
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		leaveCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Leave(leaveCtx); err != nil {
			log.Print(err) // the others will see the Lease expire instead
		}
	}()
	runs := []string{"3f1c9a2e-run", "8b7d0c4f-run"}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.Lost():
			log.Printf("%v: stop acting on runs, then Leave and Join again", m.Err())
			return
		case <-m.Changes():
			members := m.Members()
			for _, run := range runs {
				if fleet.Owner(members, run) == m.Name() {
					fmt.Println("mine:", run)
				}
			}
		}
	}
}

// Owner gives each run to one member; when a member departs, only its
// runs move.
func ExampleOwner() {
	members := []string{"etl-7d9f-abcde/k2x9q", "etl-7d9f-fghij/p4m8z", "etl-7d9f-klmno/b6n3w"}
	runs := []string{"run-1", "run-2", "run-3", "run-4", "run-5", "run-6"}
	for _, run := range runs {
		fmt.Println(run, fleet.Owner(members, run))
	}
	fmt.Println("after etl-7d9f-abcde leaves:")
	for _, run := range runs {
		fmt.Println(run, fleet.Owner(members[1:], run))
	}
	// Output:
	// run-1 etl-7d9f-abcde/k2x9q
	// run-2 etl-7d9f-klmno/b6n3w
	// run-3 etl-7d9f-fghij/p4m8z
	// run-4 etl-7d9f-fghij/p4m8z
	// run-5 etl-7d9f-klmno/b6n3w
	// run-6 etl-7d9f-klmno/b6n3w
	// after etl-7d9f-abcde leaves:
	// run-1 etl-7d9f-klmno/b6n3w
	// run-2 etl-7d9f-klmno/b6n3w
	// run-3 etl-7d9f-fghij/p4m8z
	// run-4 etl-7d9f-fghij/p4m8z
	// run-5 etl-7d9f-klmno/b6n3w
	// run-6 etl-7d9f-klmno/b6n3w
}

package jobwatch_test

import (
	"fmt"

	"github.com/kubeworker/kubeworker/jobwatch"
)

// A scheduler retries what was not the run's fault.
func ExampleOutcome_Fault() {
	for _, o := range []jobwatch.Outcome{
		jobwatch.Succeeded, jobwatch.Failed, jobwatch.OOMKilled,
		jobwatch.Evicted, jobwatch.Unschedulable, jobwatch.CannotCreatePod, jobwatch.PodVanished,
		jobwatch.TimedOut,
	} {
		retry := o.Fault() == jobwatch.FaultInfrastructure
		fmt.Printf("%-16s %-15v retry: %v\n", o, o.Fault(), retry)
	}
	// Output:
	// Succeeded        None            retry: false
	// Failed           Run             retry: false
	// OOMKilled        Run             retry: false
	// Evicted          Infrastructure  retry: true
	// Unschedulable    Infrastructure  retry: true
	// CannotCreatePod  Infrastructure  retry: true
	// PodVanished      Infrastructure  retry: true
	// TimedOut         Unknown         retry: false
}

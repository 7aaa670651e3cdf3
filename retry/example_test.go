package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/kubeworker/kubeworker/retry"
)

// A call that the API server answers twice with 429 and then serves.
func ExampleValue() {
	calls := 0
	get := func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "", apierrors.NewTooManyRequests("slow down", 0)
		}
		return "job-1", nil
	}
	p := retry.Policy{Initial: time.Millisecond} // the zero Policy waits from 500 ms, for up to 3 minutes
	name, err := retry.Value(context.Background(), p, get)
	fmt.Println(name, err, calls)
	// Output: job-1 <nil> 3
}

// A 4xx is returned at once, as it is.
func ExamplePolicy_Do() {
	err := retry.Policy{}.Do(context.Background(), func(context.Context) error {
		return apierrors.NewBadRequest("spec.template: Required value")
	})
	fmt.Println(apierrors.IsBadRequest(err), errors.Is(err, retry.ErrGaveUp))
	// Output: true false
}

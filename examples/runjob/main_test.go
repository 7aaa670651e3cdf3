package main

import (
	"testing"
)

// TestRunjobOnTheLocalCluster runs the README's main command as it is: it
// starts its own local cluster and runs one Job through a Worker.
func TestRunjobOnTheLocalCluster(t *testing.T) {
	for _, code := range []string{"0", "3"} {
		if err := run(t.Context(), "", "", "default", code); err != nil {
			t.Fatalf("exit code %s: %v", code, err)
		}
	}
}

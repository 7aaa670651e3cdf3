package soak

import "testing"

func TestResourceOfNamesTheResourceAndSubresource(t *testing.T) {
	for path, want := range map[string]string{
		"/api/v1/namespaces/ns/pods/p/log":                         "pods/log",
		"/api/v1/namespaces/ns/pods":                               "pods",
		"/api/v1/namespaces/kube-system":                           "namespaces",
		"/apis/batch/v1/namespaces/ns/jobs/j":                      "jobs",
		"/apis/batch/v1/jobs":                                      "jobs",
		"/apis/coordination.k8s.io/v1/namespaces/ns/leases/r1-abc": "leases",
		"/api/v1/namespaces/ns/events":                             "events",
		"/version":                                                 "/version",
	} {
		if got := resourceOf(path); got != want {
			t.Errorf("resourceOf(%q) = %q, want %q", path, got, want)
		}
	}
}

package metrics

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name, method, url string
		want              requestInfo
	}{
		{"create a namespaced Job", "POST", "/apis/batch/v1/namespaces/ns/jobs",
			requestInfo{resource: true, verb: "create", group: "batch", version: "v1", namespace: "ns", kind: "jobs"}},
		{"get a Job", "GET", "/apis/batch/v1/namespaces/ns/jobs/run-1",
			requestInfo{resource: true, verb: "get", group: "batch", version: "v1", namespace: "ns", kind: "jobs", name: "run-1"}},
		{"a GET without a name is a list", "GET", "/apis/batch/v1/namespaces/ns/jobs?labelSelector=a%3Db",
			requestInfo{resource: true, verb: "list", group: "batch", version: "v1", namespace: "ns", kind: "jobs"}},
		{"watch=true makes it a watch", "GET", "/api/v1/namespaces/ns/pods?watch=true&sendInitialEvents=true",
			requestInfo{resource: true, verb: "watch", version: "v1", namespace: "ns", kind: "pods"}},
		{"watch=1 is a watch too", "GET", "/api/v1/pods?watch=1",
			requestInfo{resource: true, verb: "watch", version: "v1", kind: "pods"}},
		{"watch=false is a list", "GET", "/api/v1/pods?watch=false",
			requestInfo{resource: true, verb: "list", version: "v1", kind: "pods"}},
		{"a watch value that is no bool is a watch, as the API server reads it", "GET", "/api/v1/pods?watch=yes",
			requestInfo{resource: true, verb: "watch", version: "v1", kind: "pods"}},
		{"watch=true on a named get stays a get", "GET", "/api/v1/namespaces/ns/pods/p?watch=true",
			requestInfo{resource: true, verb: "get", version: "v1", namespace: "ns", kind: "pods", name: "p"}},
		{"the legacy watch prefix", "GET", "/api/v1/watch/namespaces/ns/pods/p",
			requestInfo{resource: true, verb: "watch", version: "v1", namespace: "ns", kind: "pods", name: "p"}},
		{"a pod log is a get of pods/log", "GET", "/api/v1/namespaces/ns/pods/p/log?follow=true&timestamps=true",
			requestInfo{resource: true, verb: "get", version: "v1", namespace: "ns", kind: "pods", name: "p", subresource: "log"}},
		{"a status update", "PUT", "/apis/batch/v1/namespaces/ns/jobs/j/status",
			requestInfo{resource: true, verb: "update", group: "batch", version: "v1", namespace: "ns", kind: "jobs", name: "j", subresource: "status"}},
		{"patch", "PATCH", "/api/v1/namespaces/ns/pods/p",
			requestInfo{resource: true, verb: "patch", version: "v1", namespace: "ns", kind: "pods", name: "p"}},
		{"delete", "DELETE", "/apis/batch/v1/namespaces/ns/jobs/j",
			requestInfo{resource: true, verb: "delete", group: "batch", version: "v1", namespace: "ns", kind: "jobs", name: "j"}},
		{"a DELETE without a name is a deletecollection", "DELETE", "/api/v1/namespaces/ns/pods",
			requestInfo{resource: true, verb: "deletecollection", version: "v1", namespace: "ns", kind: "pods"}},
		{"HEAD is a get", "HEAD", "/api/v1/namespaces/ns/pods/p",
			requestInfo{resource: true, verb: "get", version: "v1", namespace: "ns", kind: "pods", name: "p"}},
		{"an event list across namespaces", "GET", "/api/v1/events",
			requestInfo{resource: true, verb: "list", version: "v1", kind: "events"}},
		{"list namespaces", "GET", "/api/v1/namespaces",
			requestInfo{resource: true, verb: "list", version: "v1", kind: "namespaces"}},
		{"get a namespace", "GET", "/api/v1/namespaces/kube-system",
			requestInfo{resource: true, verb: "get", version: "v1", namespace: "kube-system", kind: "namespaces", name: "kube-system"}},
		{"a namespace's status is its subresource", "PUT", "/api/v1/namespaces/ns/status",
			requestInfo{resource: true, verb: "update", version: "v1", namespace: "ns", kind: "namespaces", name: "ns", subresource: "status"}},
		{"a namespace's finalize is its subresource", "PUT", "/api/v1/namespaces/ns/finalize",
			requestInfo{resource: true, verb: "update", version: "v1", namespace: "ns", kind: "namespaces", name: "ns", subresource: "finalize"}},
		{"an eviction is a create of pods/eviction", "POST", "/api/v1/namespaces/ns/pods/p/eviction",
			requestInfo{resource: true, verb: "create", version: "v1", namespace: "ns", kind: "pods", name: "p", subresource: "eviction"}},
		{"proxy keeps the rest of the path out of the subresource", "GET", "/api/v1/proxy/namespaces/ns/pods/p/x/y",
			requestInfo{resource: true, verb: "proxy", version: "v1", namespace: "ns", kind: "pods", name: "p"}},
		{"a host path prefix is skipped", "GET", "/k8s/clusters/c-1/apis/batch/v1/namespaces/ns/jobs/j",
			requestInfo{resource: true, verb: "get", group: "batch", version: "v1", namespace: "ns", kind: "jobs", name: "j"}},
		{"group discovery is no resource", "GET", "/apis/batch/v1", requestInfo{verb: "get"}},
		{"core discovery is no resource", "GET", "/api/v1", requestInfo{verb: "get"}},
		{"version is no resource", "GET", "/version", requestInfo{verb: "get"}},
		{"metrics is no resource", "GET", "/metrics", requestInfo{verb: "get"}},
		{"the root is no resource", "GET", "/", requestInfo{verb: "get"}},
		{"a bare watch prefix is no resource", "GET", "/api/v1/watch", requestInfo{verb: "get"}},
		{"an odd method is kept in lower case", "OPTIONS", "/api/v1/pods",
			requestInfo{resource: true, verb: "options", version: "v1", kind: "pods"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := url.Parse(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := parseRequest(tt.method, u); got != tt.want {
				t.Errorf("parseRequest(%s %s) =\n %+v, want\n %+v", tt.method, tt.url, got, tt.want)
			}
		})
	}
}

func TestRequestOfARequestInfo(t *testing.T) {
	tests := []struct {
		method, url string
		want        Request
		str         string
	}{
		{"GET", "/api/v1/namespaces/ns/pods/p/log", Request{"get", "pods/log"}, "get pods/log"},
		{"GET", "/apis/batch/v1/namespaces/ns/jobs?watch=true", Request{"watch", "jobs"}, "watch jobs"},
		{"GET", "/version", Request{Verb: "get"}, "get"},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		got := parseRequest(tt.method, u).request()
		if got != tt.want || got.String() != tt.str {
			t.Errorf("%s %s: %+v %q, want %+v %q", tt.method, tt.url, got, got.String(), tt.want, tt.str)
		}
	}
}

func TestParseRequestOfNoURLIsNoResource(t *testing.T) {
	if got := parseRequest("GET", nil); got != (requestInfo{verb: "get"}) {
		t.Errorf("got %+v", got)
	}
}

// FuzzParseRequest checks that no method and path make parseRequest
// panic, and that what it returns is consistent: its parts are path
// segments, and it always has a verb.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"/apis/batch/v1/namespaces/ns/jobs", "/api/v1/namespaces/ns/pods/p/log", "/api/v1/watch/pods",
		"/api/v1/namespaces/ns/status", "//api//v1//", "/apis", "/api/v1/proxy", "/x/api/v1/pods?watch=true", "",
	} {
		f.Add("GET", s)
	}
	f.Add("DELETE", "/api/v1/namespaces/ns/pods")
	f.Fuzz(func(t *testing.T, method, path string) {
		u, err := url.Parse(path)
		if err != nil {
			return
		}
		info := parseRequest(method, u)
		for _, part := range []string{info.group, info.version, info.namespace, info.kind, info.name, info.subresource} {
			if strings.Contains(part, "/") {
				t.Errorf("%s %q: part %q holds a slash: %+v", method, path, part, info)
			}
		}
		if !info.resource && (info.group != "" || info.version != "" || info.kind != "") {
			t.Errorf("%s %q: not a resource, yet %+v", method, path, info)
		}
		if info.verb == "" && method != "" {
			t.Errorf("%s %q: no verb", method, path)
		}
		_ = info.request().String()
	})
}

// The verbs of the methods client-go sends.
func TestMethodVerbs(t *testing.T) {
	for method, want := range map[string]string{
		http.MethodPost: "create", http.MethodGet: "get", http.MethodHead: "get", http.MethodPut: "update",
		http.MethodPatch: "patch", http.MethodDelete: "delete", "TRACE": "trace",
	} {
		if got := methodVerb(method); got != want {
			t.Errorf("methodVerb(%s) = %q, want %q", method, got, want)
		}
	}
}

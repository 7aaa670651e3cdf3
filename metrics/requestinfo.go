package metrics

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// requestInfo is what a request's method and path say about it, as the
// API server's request info (k8s.io/apiserver's RequestInfoFactory)
// reads them:
//
//	/api/VERSION/RESOURCE[/NAME[/SUBRESOURCE]]
//	/apis/GROUP/VERSION/namespaces/NAMESPACE/RESOURCE[/NAME[/SUBRESOURCE]]
//	/api/v1/watch/namespaces/NAMESPACE/pods   (the legacy watch prefix)
//
// The verb comes from the method (POST create, GET and HEAD get, PUT
// update, PATCH patch, DELETE delete); a GET without a name is a list, or
// a watch with watch=true; a DELETE without a name is a deletecollection.
// /api/v1/namespaces/NAME/status and .../finalize are subresources of the
// namespace NAME.
type requestInfo struct {
	resource                  bool // the path names a resource (else discovery, /version, /healthz, ...)
	verb                      string
	group, version, namespace string
	kind, name, subresource   string // kind is the resource, "pods"
}

// parseRequest reads method and u. It never fails: a path it cannot read
// as a resource is a non-resource request whose verb is the method in
// lower case. A path prefix before /api or /apis (a config's host with a
// path) is skipped.
func parseRequest(method string, u *url.URL) requestInfo {
	info := requestInfo{verb: strings.ToLower(method)}
	if u == nil {
		return info
	}
	parts := splitPath(u.Path)
	for i, p := range parts { // skip a host path prefix
		if p == "api" || p == "apis" {
			parts = parts[i:]
			break
		}
	}
	if len(parts) < 3 || (parts[0] != "api" && parts[0] != "apis") {
		return info
	}
	if parts[0] == "apis" {
		if len(parts) < 4 {
			return info // group discovery: /apis/batch/v1
		}
		info.group, parts = parts[1], parts[1:]
	}
	info.resource = true
	info.version, parts = parts[1], parts[2:]

	if parts[0] == "watch" || parts[0] == "proxy" {
		if len(parts) < 2 {
			return requestInfo{verb: strings.ToLower(method)} // the API server refuses it
		}
		info.verb, parts = parts[0], parts[1:]
	} else {
		info.verb = methodVerb(method)
	}
	if parts[0] == "namespaces" && len(parts) > 1 {
		info.namespace = parts[1]
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	info.kind = parts[0]
	if len(parts) > 1 {
		info.name = parts[1]
	}
	if len(parts) > 2 && info.verb != "proxy" {
		info.subresource = parts[2]
	}
	if info.name == "" && info.verb == "get" {
		info.verb = "list"
		if watchParam(u) {
			info.verb = "watch"
		}
	}
	if info.name == "" && info.verb == "delete" {
		info.verb = "deletecollection"
	}
	return info
}

// request returns the Request the info counts as.
func (i requestInfo) request() Request {
	if !i.resource {
		return Request{Verb: i.verb}
	}
	r := Request{Verb: i.verb, Resource: i.kind}
	if i.subresource != "" {
		r.Resource += "/" + i.subresource
	}
	return r
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func methodVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet, http.MethodHead:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return strings.ToLower(method)
}

// watchParam reports whether the query asks for a watch: as the API
// server, any value but a false one does.
func watchParam(u *url.URL) bool {
	vals, ok := u.Query()["watch"]
	if !ok || len(vals) == 0 {
		return false
	}
	b, err := strconv.ParseBool(vals[0])
	return err != nil || b
}

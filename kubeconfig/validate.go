package kubeconfig

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// validate returns an *InvalidError for each problem that would make
// clientcmd fail, or fail with a misleading message ("no configuration
// has been provided, try setting KUBERNETES_MASTER"), with the context
// that context (else cfg's current-context) names. Like clientcmd, it
// looks only at that context and what it names.
func validate(cfg *clientcmdapi.Config, context string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &InvalidError{Field: field, Detail: fmt.Sprintf(format, args...)})
	}
	if len(cfg.Clusters) == 0 {
		bad("clusters", "none given")
	}
	field := "context"
	if context == "" {
		field, context = "current-context", cfg.CurrentContext
	}
	if context == "" {
		bad(field, "none given, and no context was named (contexts: %s)", names(cfg.Contexts))
		return errs
	}
	ctx := cfg.Contexts[context]
	if ctx == nil {
		// clientcmd's wording, which clientcmd.IsContextNotFound matches.
		bad(field, "context was not found for specified context: %s (contexts: %s)", context, names(cfg.Contexts))
		return errs
	}
	path := entryPath("contexts", context) + ".context"
	switch {
	case ctx.AuthInfo == "":
		bad(path+".user", "none given")
	case cfg.AuthInfos[ctx.AuthInfo] == nil:
		bad(path+".user", "%q was not found (users: %s)", ctx.AuthInfo, names(cfg.AuthInfos))
	}
	cluster := cfg.Clusters[ctx.Cluster]
	switch {
	case ctx.Cluster == "":
		bad(path+".cluster", "none given")
	case cluster == nil:
		bad(path+".cluster", "%q was not found (clusters: %s)", ctx.Cluster, names(cfg.Clusters))
	default:
		path = entryPath("clusters", ctx.Cluster) + ".cluster"
		if cluster.Server == "" {
			bad(path+".server", "none given")
		}
		// clientcmd's own error here would quote the URL, password and all.
		if p := cluster.ProxyURL; p != "" {
			if u, err := url.Parse(p); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
				bad(path+".proxy-url", "not an http, https or socks5 URL")
			}
		}
	}
	return errs
}

// names lists m's keys, sorted and quoted, the first 10 of them.
func names[T any](m map[string]T) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	more := ""
	if len(keys) > 10 {
		more = fmt.Sprintf(" and %d more", len(keys)-10)
		keys = keys[:10]
	}
	for i, k := range keys {
		keys[i] = strconv.Quote(k)
	}
	return strings.Join(keys, ", ") + more
}

package jobwatch

import (
	"strings"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// dynamicFor returns a dynamic client that talks to the API server of
// client over the same connection: the http.Client of one of its REST
// clients, whose transport carries the authentication, TLS and any
// wrapper (metrics.WrapTransport), and the same rate limiter. It returns
// nil when client is not a *kubernetes.Clientset (a fake, a wrapper),
// whose connection cannot be reached: Kueue is then not followed unless
// Options.Dynamic is given.
func dynamicFor(client kubernetes.Interface) dynamic.Interface {
	cs, ok := client.(*kubernetes.Clientset)
	if !ok || cs == nil {
		return nil
	}
	rc, ok := cs.CoreV1().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil || rc.Client == nil {
		return nil
	}
	// The request's URL is the server's, with any path prefix, and the
	// core group's path after it.
	u := rc.Get().URL()
	if u == nil || u.Host == "" || !strings.HasSuffix(u.Path, "/api/v1") {
		return nil
	}
	cfg := &rest.Config{Host: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/api/v1"), UserAgent: rest.DefaultKubernetesUserAgent()}
	if limiter := rc.GetRateLimiter(); limiter != nil {
		cfg.RateLimiter = limiter
	} else {
		cfg.QPS = -1 // the clientset has none either
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, rc.Client)
	if err != nil {
		return nil
	}
	return dyn
}

package clustertest

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// The proxy tests cut every proxied connection, so they do not run in
// parallel.

func TestProxyCutAllDropsWatchesAndLogStreams(t *testing.T) {
	direct, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	proxied := newClient(t, cluster.ProxyConfig())
	job := createJob(t, direct, ns, newJob(map[string]string{AnnotationDelay: "1h", AnnotationLog: "first"}))
	pod := waitJobPod(t, direct, ns, job.Name, "Running", isRunning)

	w, err := proxied.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := direct.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "seen"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if ev.Type != watch.Added {
			t.Fatalf("event %s, want ADDED", ev.Type)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the proxied watch saw nothing")
	}
	stream, err := proxied.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Follow: true}).Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	buf := make([]byte, len("first\n"))
	if _, err := io.ReadFull(stream, buf); err != nil {
		t.Fatalf("read followed log: %v", err)
	}

	before := cluster.Proxy().Stats()
	if n := cluster.Proxy().CutAll(); n < 1 {
		t.Fatalf("CutAll closed %d connections, want at least 1", n)
	}
	waitClosed(t, w)
	if _, err := io.Copy(io.Discard, stream); err == nil {
		t.Error("the followed log ended cleanly after the cut, want an error")
	}
	if after := cluster.Proxy().Stats(); after.CutConnections <= before.CutConnections {
		t.Errorf("cut connections %d → %d, want more", before.CutConnections, after.CutConnections)
	}
	// New requests through the proxy work.
	if _, err := proxied.CoreV1().ConfigMaps(ns).Get(t.Context(), "seen", metav1.GetOptions{}); err != nil {
		t.Errorf("get through the proxy after the cut: %v", err)
	}
}

func TestProxyCutAfterResponseIsAnAmbiguousFailure(t *testing.T) {
	direct, ns := newClient(t, cluster.Config()), cluster.NewNamespace(t)
	proxied := newClient(t, cluster.ProxyConfig())
	before := cluster.Proxy().Stats()
	cluster.Proxy().CutNextAfterResponse(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/jobs")
	})
	job := newJob(nil)
	job.GenerateName, job.Name = "", "ambiguous"
	if _, err := proxied.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err == nil {
		t.Fatal("create through a cut: got no error")
	}
	if _, err := direct.BatchV1().Jobs(ns).Get(t.Context(), "ambiguous", metav1.GetOptions{}); err != nil {
		t.Errorf("the cut create did not reach the server: %v", err)
	}
	if got := cluster.Proxy().Stats().CutRequests - before.CutRequests; got != 1 {
		t.Errorf("cut requests grew by %d, want 1", got)
	}
	// The cut was one-shot: the next create goes through.
	job.Name = "clean"
	if _, err := proxied.BatchV1().Jobs(ns).Create(t.Context(), job, metav1.CreateOptions{}); err != nil {
		t.Errorf("create after the cut: %v", err)
	}
}

func TestProxyRefuseAnswers503UntilUndone(t *testing.T) {
	ns := cluster.NewNamespace(t)
	proxied := newClient(t, cluster.ProxyConfig())
	before := cluster.Proxy().Stats()
	undo := cluster.Proxy().Refuse(func(r *http.Request) bool {
		return r.URL.Path == "/api/v1/namespaces/"+ns+"/configmaps" && r.URL.Query().Get("watch") == "true"
	})
	if _, err := proxied.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("refused watch: got %v, want 503 Service Unavailable", err)
	}
	if _, err := proxied.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("a list the matcher does not pick: %v", err)
	}
	if got := cluster.Proxy().Stats().RefusedRequests - before.RefusedRequests; got != 1 {
		t.Errorf("refused requests grew by %d, want 1", got)
	}
	undo()
	w, err := proxied.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch after undo: %v", err)
	}
	w.Stop()
}

func TestProxyCountsRequestsPerUserAgent(t *testing.T) {
	// A proxy of its own, in front of a stub server, so that no other
	// client's requests are counted.
	ca, err := newCertAuthority()
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.serving("stub", loopback)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(serving.certPEM, serving.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	upstream.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	upstream.StartTLS()
	defer upstream.Close()
	proxy, err := startProxy(ca, upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.close()
	if got := proxy.Stats().ByUserAgent; got == nil || len(got) != 0 {
		t.Errorf("ByUserAgent before any request = %#v, want an empty map", got)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.certPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	get := func(agent string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, proxy.URL()+"/api", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", agent)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET through the proxy: %s", resp.Status)
		}
	}
	var seen []string
	stop := proxy.Observe(func(r *http.Request) { seen = append(seen, r.UserAgent()) })
	for range 3 {
		get("one/v1")
	}
	get("two/v1")
	stop()
	get("")
	if want := []string{"one/v1", "one/v1", "one/v1", "two/v1"}; !slices.Equal(seen, want) {
		t.Errorf("Observe saw %q until undone, want %q", seen, want)
	}

	stats := proxy.Stats()
	want := map[string]int64{"one/v1": 3, "two/v1": 1, "": 1}
	if !maps.Equal(stats.ByUserAgent, want) {
		t.Errorf("ByUserAgent = %v, want %v", stats.ByUserAgent, want)
	}
	if stats.Requests != 5 {
		t.Errorf("Requests = %d, want 5", stats.Requests)
	}
	// The map is a copy: changing it changes no later Stats.
	stats.ByUserAgent["one/v1"] = 100
	if got := proxy.Stats().ByUserAgent["one/v1"]; got != 3 {
		t.Errorf("after changing a copy, one/v1 = %d, want 3", got)
	}
}

package worker

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/jobwatch"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

// promClient returns a client through conf whose requests are counted in
// rec, and a fresh registry holding rec.
func promClient(t *testing.T, conf *rest.Config) (kubernetes.Interface, *prom.Recorder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	conf = rest.CopyConfig(conf)
	conf.Wrap(metrics.WrapTransport(rec))
	client, err := kubernetes.NewForConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	return client, rec, reg
}

// sampleOf sums the samples of metric name (sample counts, for a
// histogram) whose labels include want.
func sampleOf(t testing.TB, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

// apiKey names series of the API server's apiserver_request_total,
// summed over the labels it leaves out (group, version, component, and
// scope but for "cluster").
type apiKey struct {
	verb, resource, subresource, code string
	cluster                           bool // scope "cluster": a request across namespaces
}

func (k apiKey) String() string {
	r := k.resource
	if k.subresource != "" {
		r += "/" + k.subresource
	}
	if k.cluster {
		r += " (cluster)"
	}
	return fmt.Sprintf("%s %s %s", k.verb, r, k.code)
}

var labelPair = regexp.MustCompile(`(\w+)="([^"]*)"`)

// apiServerRequests scrapes the API server's /metrics as the admin and
// returns apiserver_request_total.
func apiServerRequests(t *testing.T) map[apiKey]float64 {
	t.Helper()
	raw, err := adminClient(t).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("scrape the API server: %v", err)
	}
	out := map[apiKey]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape the API server: %q: %v", line, err)
		}
		l := map[string]string{}
		for _, m := range labelPair.FindAllStringSubmatch(line[:i], -1) {
			l[m[1]] = m[2]
		}
		out[apiKey{l["verb"], l["resource"], l["subresource"], l["code"], l["scope"] == "cluster"}] += v
	}
	return out
}

// apiVerb is the verb apiserver_request_total gives a request of ours.
func apiVerb(r metrics.Request) string {
	if r.Resource == "pods/log" {
		return "CONNECT"
	}
	switch r.Verb {
	case "create":
		return "POST"
	case "update":
		return "PUT"
	}
	return strings.ToUpper(r.Verb)
}

// pathLog records the path of every request, to check which scope the
// client's requests had.
type pathLog struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	paths []string
}

func (p *pathLog) RoundTrip(req *http.Request) (*http.Response, error) {
	p.mu.Lock()
	p.paths = append(p.paths, req.Method+" "+req.URL.Path)
	p.mu.Unlock()
	return p.rt.RoundTrip(req)
}

// waitNoNamespaceTerminating waits until the namespace controller is
// idle: while it deletes a namespace it lists, and deletes, every kind of
// object in it.
func waitNoNamespaceTerminating(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := adminClient(t).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, ns := range list.Items {
			if ns.Status.Phase == corev1.NamespaceTerminating {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("namespaces still terminating: %v", err)
	}
}

// TestE2ERequestCountsAgreeWithTheAPIServersOwn compares the requests the
// counting transport saw, by verb, resource and code, with the API
// server's apiserver_request_total over the same window.
//
// apiserver_request_total has no user label, so a dedicated user would
// not tell our requests apart. Instead the window is one in which only
// our client makes the kinds of request compared: the Job followed has
// finished before it opens and the one diagnosed waits for its image
// (so the Job controller, kwok and the test cluster's log set-up are
// done with them), the Job created in it is suspended (no pod, no
// scheduler, no kwok), no namespace is being deleted (the namespace
// controller lists every kind), and the other components list and watch
// cluster-wide (scope "cluster", left out), while our client's requests
// are all in the test's namespace, which the test checks. What the
// other components do in the window (status updates, events, their own
// watches) has other verbs, subresources or scopes.
func TestE2ERequestCountsAgreeWithTheAPIServersOwn(t *testing.T) {
	ns := cluster.NewNamespace(t)
	admin := adminClient(t)
	done := preparedJob(t, ns, "window-followed", nil)
	done.Spec.Template.Annotations = map[string]string{clustertest.AnnotationLog: "one\ntwo"}
	followed, err := NewCreator(admin, CreateOptions{}).Create(t.Context(), done)
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		j, err := admin.BatchV1().Jobs(ns).Get(ctx, followed.Name, metav1.GetOptions{})
		return err == nil && j.Status.Succeeded == 1 && j.Status.CompletionTime != nil, nil
	})
	if err != nil {
		t.Fatalf("the Job to follow did not finish: %v", err)
	}
	stuckJob := preparedJob(t, ns, "window-stuck", nil)
	stuckJob.Spec.Template.Annotations = map[string]string{clustertest.AnnotationImagePull: "ErrImagePull"}
	stuck, err := NewCreator(admin, CreateOptions{}).Create(t.Context(), stuckJob)
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pods, err := admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + stuck.Name})
		if err != nil || len(pods.Items) != 1 || len(pods.Items[0].Status.ContainerStatuses) == 0 {
			return false, nil
		}
		w := pods.Items[0].Status.ContainerStatuses[0].State.Waiting
		return w != nil && w.Reason == "ErrImagePull", nil
	})
	if err != nil {
		t.Fatalf("the stuck Job's pod did not reach ErrImagePull: %v", err)
	}
	waitNoNamespaceTerminating(t)

	conf := rest.CopyConfig(cluster.Config())
	paths := &pathLog{}
	conf.Wrap(func(rt http.RoundTripper) http.RoundTripper { paths.rt = rt; return paths })
	client, rec, reg := promClient(t, conf)
	before := apiServerRequests(t)

	// The window.
	suspended := preparedJob(t, ns, "window-suspended", nil)
	suspended.Spec.Suspend = new(true)
	if _, err := NewCreator(client, CreateOptions{Metrics: rec}).Create(t.Context(), suspended); err != nil {
		t.Fatal(err)
	}
	watcher := jobwatch.New(client, jobwatch.Options{Metrics: rec})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var logs bytes.Buffer
	res, err := watcher.Wait(ctx, jobwatch.JobRef{Namespace: ns, Name: followed.Name}, jobwatch.WaitOptions{Logs: &logs})
	if err != nil || res.Outcome != jobwatch.Succeeded || logs.String() != "one\ntwo\n" {
		t.Errorf("Wait: %v, %v, log %q", res.Outcome, err, logs.String())
	}
	if _, err := watcher.Wait(ctx, jobwatch.JobRef{Namespace: ns, Name: "no-such-job"}, jobwatch.WaitOptions{}); err == nil {
		t.Errorf("Wait for a missing Job: no error")
	}
	// A diagnosis lists the Job's and the pod's events.
	res, err = watcher.Wait(ctx, jobwatch.JobRef{Namespace: ns, Name: stuck.Name}, jobwatch.WaitOptions{PodStartTimeout: time.Second})
	if err != nil || res.Outcome != jobwatch.ImagePullError {
		t.Errorf("Wait for the stuck Job: %v, %v; want ImagePullError", res.Outcome, err)
	}
	watcher.Close() // the API server counts a watch when it ends

	// Ours, in the API server's terms.
	ours := map[apiKey]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "kubeworker_api_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			r := metrics.Request{Verb: l["verb"], Resource: l["resource"]}
			resource, sub, _ := strings.Cut(r.Resource, "/")
			ours[apiKey{apiVerb(r), resource, sub, l["code"], false}] += m.GetCounter().GetValue()
		}
	}
	for _, p := range paths.paths {
		if !strings.Contains(p, "/namespaces/"+ns+"/") {
			t.Errorf("our client made a request outside namespace %s: %s", ns, p)
		}
	}
	// The kinds compared: those we made, and any that the library could
	// make that the API server saw in the window.
	compared := func(k apiKey) bool {
		if _, ok := ours[k]; ok {
			return true
		}
		if k.cluster {
			return false
		}
		switch {
		case k.resource == "jobs" && k.subresource == "" && k.verb == "POST":
			return true
		case k.resource == "pods" && k.subresource == "log":
			return true
		case (k.resource == "jobs" || k.resource == "pods" || k.resource == "events") && k.subresource == "":
			return k.verb == "GET" || k.verb == "LIST" || k.verb == "WATCH"
		}
		return false
	}
	var theirs map[apiKey]float64
	delta := func() map[apiKey]float64 {
		d := map[apiKey]float64{}
		for k, v := range apiServerRequests(t) {
			if n := v - before[k]; n != 0 && compared(k) {
				d[k] = n
			}
		}
		return d
	}
	// The API server records a request when it ends; the watches ended
	// with Close, a moment ago.
	_ = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		theirs = delta()
		for k, v := range ours {
			if theirs[k] < v {
				return false, nil
			}
		}
		return true, nil
	})
	keys := map[apiKey]bool{}
	for k := range ours {
		keys[k] = true
	}
	for k := range theirs {
		keys[k] = true
	}
	var table []string
	for k := range keys {
		table = append(table, fmt.Sprintf("%-40s ours %3v  API server %3v", k, ours[k], theirs[k]))
		if ours[k] != theirs[k] {
			t.Errorf("%s: our transport counted %v, the API server %v", k, ours[k], theirs[k])
		}
	}
	sort.Strings(table)
	t.Logf("requests in the window:\n%s", strings.Join(table, "\n"))
	if len(ours) < 4 {
		t.Errorf("only %d kinds of request counted; want at least create, watch (2) and log", len(ours))
	}
}

func TestE2ECreatorCountsAttemptsAndTheRetryOfALostAnswer(t *testing.T) {
	ns := cluster.NewNamespace(t)
	client, rec, reg := promClient(t, cluster.ProxyConfig())
	creator := NewCreator(client, CreateOptions{Retry: fastRetry, Metrics: rec})
	cluster.Proxy().CutNextAfterResponse(func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/jobs")
	})
	var run metrics.RequestCount
	if _, err := creator.Create(metrics.WithRequestCount(t.Context(), &run), preparedJob(t, ns, "lost-answer", nil)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"kubeworker_job_create_attempts_total": 2, "kubeworker_job_create_retries_total": 1} {
		if got := sampleOf(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// The cut create has no answer; the retry GETs the Job by its name
	// (never a LIST of the namespace's Jobs) and adopts it.
	for _, c := range []struct {
		verb, code string
		want       float64
	}{{"create", "error", 1}, {"get", "200", 1}, {"list", "200", 0}, {"create", "201", 0}} {
		if got := sampleOf(t, reg, "kubeworker_api_requests_total", map[string]string{"verb": c.verb, "resource": "jobs", "code": c.code}); got != c.want {
			t.Errorf("api_requests_total{%s jobs %s} = %v, want %v", c.verb, c.code, got, c.want)
		}
	}
	want := metrics.Requests{{Verb: "create", Resource: "jobs"}: 1, {Verb: "get", Resource: "jobs"}: 1}
	if got := run.Requests(); len(got) != len(want) || got[metrics.Request{Verb: "create", Resource: "jobs"}] != 1 || got[metrics.Request{Verb: "get", Resource: "jobs"}] != 1 {
		t.Errorf("the run's requests %v, want %v", got, want)
	}
}

func TestE2EReadinessReflectsTheWatchStreams(t *testing.T) {
	ns := cluster.NewNamespace(t)
	nobody, err := cluster.UserConfig("kubeworker-readiness-nobody")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		conf  *rest.Config
		ready bool
	}{{"a stream that cannot list", nobody, false}, {"a synced stream", cluster.Config(), true}} {
		t.Run(c.name, func(t *testing.T) {
			watchClient, err := kubernetes.NewForConfig(c.conf)
			if err != nil {
				t.Fatal(err)
			}
			watcher := jobwatch.New(watchClient, jobwatch.Options{})
			w, err := New(adminClient(t), Options{Parts: Parts{Waiter: watcher}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Close(context.Background()) })
			if err := w.Ready(); err != nil {
				t.Errorf("before any Wait: Ready() = %v, want nil", err)
			}
			job := preparedJob(t, ns, "readiness-"+strconv.FormatBool(c.ready), nil)
			created, err := NewCreator(adminClient(t), CreateOptions{}).Create(t.Context(), job)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			_, werr := watcher.Wait(ctx, jobwatch.JobRef{Namespace: ns, Name: created.Name}, jobwatch.WaitOptions{PodStartTimeout: 2 * time.Second})
			err = w.Ready()
			switch {
			case c.ready && err != nil:
				t.Errorf("Ready() = %v, want nil (Wait: %v)", err, werr)
			case !c.ready && (err == nil || !strings.Contains(err.Error(), "forbidden") || !strings.Contains(err.Error(), ns)):
				t.Errorf("Ready() = %v, want an error naming %s and the Forbidden", err, ns)
			}
		})
	}
}

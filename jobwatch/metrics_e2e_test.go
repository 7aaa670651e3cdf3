package jobwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/prometheus/client_golang/prometheus"

	tc "github.com/kubeworker/kubeworker/clustertest"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
	"github.com/kubeworker/kubeworker/metrics/prom"
)

// promWatcher returns a Watcher reading through conf whose measurements,
// and its client's requests, go to the kubeworker metrics of a fresh
// registry.
func promWatcher(t *testing.T, conf *rest.Config, logger *slog.Logger) (*Watcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec, err := prom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	conf = rest.CopyConfig(conf)
	conf.Wrap(metrics.WrapTransport(rec))
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	w := New(clientFor(t, conf), Options{Metrics: rec, Logger: logger})
	t.Cleanup(w.Close)
	return w, reg
}

// metricValue sums the samples of metric name (sample counts, for a
// histogram) whose labels include want.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, want map[string]string) float64 {
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
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
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

// requestsOf returns api_requests_total of verb and resource, any code.
func requestsOf(t testing.TB, reg prometheus.Gatherer, verb, resource string) int {
	return int(metricValue(t, reg, "kubeworker_api_requests_total", map[string]string{"verb": verb, "resource": resource}))
}

func TestE2ESharedStreamsAreCountedOnceAndEachRunPaysForItsOwnRequests(t *testing.T) {
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	w, reg := promWatcher(t, cluster.Config(), nil)
	const runs = 4
	counts := make([]*metrics.RequestCount, runs)
	var wg sync.WaitGroup
	for i := range runs {
		job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationLog: fmt.Sprintf("run %d\nbye", i), tc.AnnotationDelay: "1s"}))
		counts[i] = new(metrics.RequestCount)
		ctx := metrics.WithRequestCount(context.Background(), counts[i])
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, e2eTimeout)
			defer cancel()
			var logs safeBuffer
			res, err := w.Wait(ctx, JobRef{Namespace: ns, Name: job.Name}, WaitOptions{Logs: &logs})
			if err != nil || res.Outcome != Succeeded || logs.String() != fmt.Sprintf("run %d\nbye\n", i) {
				t.Errorf("run %d: %v, %v, log %q", i, res.Outcome, err, logs.String())
			}
		})
	}
	// A run whose pod never starts pays for the event lists of its
	// diagnosis; a Wait for a Job that does not exist, for its get.
	pullCount, missingCount := new(metrics.RequestCount), new(metrics.RequestCount)
	stuck := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationImagePull: "ErrImagePull"}))
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(metrics.WithRequestCount(context.Background(), pullCount), e2eTimeout)
		defer cancel()
		res, err := w.Wait(ctx, JobRef{Namespace: ns, Name: stuck.Name}, WaitOptions{PodStartTimeout: time.Second})
		if err != nil || res.Outcome != ImagePullError {
			t.Errorf("the stuck run: %v, %v; want ImagePullError", res.Outcome, err)
		}
	})
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(metrics.WithRequestCount(context.Background(), missingCount), e2eTimeout)
		defer cancel()
		if _, err := w.Wait(ctx, JobRef{Namespace: ns, Name: "no-such-job"}, WaitOptions{}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Wait for a missing Job: %v, want ErrNotFound", err)
		}
	})
	wg.Wait()
	if got := pullCount.Requests()[metrics.Request{Verb: "list", Resource: "events"}]; got < 1 {
		t.Errorf("the stuck run was charged %d event lists for its diagnosis (all: %v)", got, pullCount.Requests())
	}
	if got := missingCount.Requests()[metrics.Request{Verb: "get", Resource: "jobs"}]; got != 1 {
		t.Errorf("the Wait for a missing Job was charged %d gets of it (all: %v)", got, missingCount.Requests())
	}
	counts = append(counts, pullCount, missingCount)

	// The shared streams: one sync and one watch per resource for all
	// the runs, plus what restarts and relists the metrics admit to.
	for _, resource := range []string{"jobs", "pods"} {
		restarts := metricValue(t, reg, "kubeworker_watch_restarts_total", map[string]string{"resource": resource})
		relists := metricValue(t, reg, "kubeworker_watch_relists_total", map[string]string{"resource": resource})
		watches, lists := requestsOf(t, reg, "watch", resource), requestsOf(t, reg, "list", resource)
		// A sync is a watch-list (one watch) or, where the server has no
		// watch-list, a list and then a watch.
		if watches < 1 || float64(watches) != 1+restarts {
			t.Errorf("%s: %d watch requests for %d runs with %v restarts, want 1 + restarts", resource, watches, runs, restarts)
		}
		if resource == "jobs" && float64(lists) > relists+1 {
			t.Errorf("jobs: %d lists with %v relists: more than a sync each", lists, relists)
		}
	}

	// Each run pays for what it alone causes; no run pays for the shared
	// streams, and every request outside them belongs to a run (the log
	// streams run on the Watcher's context: they are counted globally).
	shared := map[metrics.Request]bool{
		{Verb: "watch", Resource: "jobs"}: true, {Verb: "watch", Resource: "pods"}: true, {Verb: "list", Resource: "jobs"}: true,
	}
	sum := metrics.Requests{}
	for i, c := range counts {
		for r, n := range c.Requests() {
			if shared[r] {
				t.Errorf("run %d was charged %d %s: shared-stream traffic", i, n, r)
			}
			sum[r] += n
		}
	}
	for _, r := range []metrics.Request{{Verb: "get", Resource: "jobs"}, {Verb: "list", Resource: "events"}} {
		if got, want := sum[r], requestsOf(t, reg, r.Verb, r.Resource); got != want {
			t.Errorf("%s: the runs were charged %d, the transport counted %d", r, got, want)
		}
	}
	// At least one log request per run with logs, charged to it or not.
	if got := requestsOf(t, reg, "get", "pods/log"); got < runs {
		t.Errorf("%d log requests for %d runs with logs", got, runs)
	}
	t.Logf("global: watch jobs %d, watch pods %d, list pods %d, get pods/log %d; runs charged %v",
		requestsOf(t, reg, "watch", "jobs"), requestsOf(t, reg, "watch", "pods"), requestsOf(t, reg, "list", "pods"),
		requestsOf(t, reg, "get", "pods/log"), sum)
	if err := w.Synced(); err != nil {
		t.Errorf("Synced after the runs: %v", err)
	}
}

func TestE2EA410IsCountedAsAnExpiredRelist(t *testing.T) {
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	w, reg := promWatcher(t, cluster.ProxyConfig(), nil)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h", tc.AnnotationExitCode: "6"}))
	ch := asyncWait(w, job, WaitOptions{})
	pod := podOf(t, client, job, "Running", isRunning)
	waitUntil(t, "the streams to sync", func() bool { return w.Synced() == nil })
	if got := metricValue(t, reg, "kubeworker_watch_relists_total", nil); got != 0 {
		t.Fatalf("%v relists before any fault", got)
	}
	// As in TestE2EA410GoneMidRunIsSurvived: move the revision on,
	// compact, and cut the watches, which resume from a compacted
	// revision and get 410 Gone.
	for i := range 20 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("churn-%d", i)}}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cluster.CompactEtcd(t.Context()); err != nil {
		t.Fatal(err)
	}
	cluster.Proxy().CutAll()
	waitUntil(t, "an expired relist to be counted", func() bool {
		return metricValue(t, reg, "kubeworker_watch_relists_total", map[string]string{"reason": "expired"}) >= 1
	})
	if got := metricValue(t, reg, "kubeworker_watch_restarts_total", nil); got < 1 {
		t.Errorf("%v watch restarts after the cut, want at least 1", got)
	}
	setDelay(t, client, pod, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Failed, 6)
	t.Logf("relists expired %v, other %v; restarts %v",
		metricValue(t, reg, "kubeworker_watch_relists_total", map[string]string{"reason": "expired"}),
		metricValue(t, reg, "kubeworker_watch_relists_total", map[string]string{"reason": "other"}),
		metricValue(t, reg, "kubeworker_watch_restarts_total", nil))
}

func TestE2EALogStreamCutIsCountedAsAReconnect(t *testing.T) {
	client, ns := clientFor(t, cluster.Config()), cluster.NewNamespace(t)
	w, reg := promWatcher(t, cluster.ProxyConfig(), nil)
	job := createJob(t, client, ns, runJob(map[string]string{tc.AnnotationDelay: "1h", tc.AnnotationLog: "first\nsecond"}))
	var logs safeBuffer
	ch := asyncWait(w, job, WaitOptions{Logs: &logs})
	pod := podOf(t, client, job, "Running", isRunning)
	waitUntil(t, "the log to be followed", func() bool { return logs.String() == "first\nsecond\n" })
	if got := metricValue(t, reg, "kubeworker_log_reconnects_total", nil); got != 0 {
		t.Fatalf("%v log reconnects before any cut", got)
	}
	cluster.Proxy().CutAll()
	waitUntil(t, "a log reconnect to be counted", func() bool {
		return metricValue(t, reg, "kubeworker_log_reconnects_total", nil) >= 1
	})
	setDelay(t, client, pod, "0s")
	c := <-ch
	if c.err != nil {
		t.Fatal(c.err)
	}
	expect(t, c.res, Succeeded, 0)
	if got := logs.String(); got != "first\nsecond\n" {
		t.Errorf("log %q after the reconnect", got)
	}
	if opened, reconnects := requestsOf(t, reg, "get", "pods/log"), metricValue(t, reg, "kubeworker_log_reconnects_total", nil); float64(opened) < 1+reconnects {
		t.Errorf("%d log requests for %v reconnects: each reconnect is a request", opened, reconnects)
	}
}

func TestE2ESyncedNamesAStreamThatCannotList(t *testing.T) {
	ns := cluster.NewNamespace(t)
	nobody, err := cluster.UserConfig("kubeworker-metrics-nobody")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := promWatcher(t, nobody, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	_, werr := w.Wait(ctx, JobRef{Namespace: ns, Name: "any"}, WaitOptions{PodStartTimeout: 2 * time.Second})
	err = w.Synced()
	if err == nil || !strings.Contains(err.Error(), ns) || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("Synced() = %v; want an error naming namespace %s and the Forbidden (Wait said %v)", err, ns, werr)
	}

	// The admin's streams sync.
	admin, _ := promWatcher(t, cluster.Config(), nil)
	job := createJob(t, clientFor(t, cluster.Config()), ns, runJob(nil))
	expect(t, waitJob(t, admin, job, WaitOptions{}), Succeeded, 0)
	if err := admin.Synced(); err != nil {
		t.Errorf("Synced() after a Wait = %v, want nil", err)
	}
}

func TestE2EWaitForSyncSyncsTheStreamsOrNamesTheRefusal(t *testing.T) {
	ns := cluster.NewNamespace(t)
	nobody, err := cluster.UserConfig("kubeworker-sync-nobody")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), e2eTimeout)
	defer cancel()
	// Refused: WaitForSync returns the Forbidden rather than waiting for
	// its ctx.
	refused := New(clientFor(t, nobody), Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(refused.Close)
	if err := refused.WaitForSync(ctx, ns); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), ns) {
		t.Errorf("WaitForSync as a user without permissions = %v, want the Forbidden naming namespace %s", err, ns)
	}

	// Allowed: the streams are synced when it returns, and hold the Job
	// created before they started.
	job := createJob(t, clientFor(t, cluster.Config()), ns, runJob(nil, func(j *batchv1.Job) {
		j.Spec.Template.Labels[manifest.LabelRunID] = "sync-1"
	}))
	w := newWatcher(t, cluster.Config())
	if err := w.WaitForSync(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if err := w.Synced(); err != nil {
		t.Errorf("Synced() after WaitForSync = %v", err)
	}
	if names, err := w.RunJobs(ctx, ns, "sync-1"); err != nil || len(names) != 1 || names[0] != job.Name {
		t.Errorf("RunJobs after WaitForSync = %v, %v; want [%s]", names, err, job.Name)
	}
}

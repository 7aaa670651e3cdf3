// Package metrics is how kubeworker's packages report what they do, and
// what each run costs the API server, without depending on a metrics
// library: they call a [Recorder], whose default, [Discard], does
// nothing. Package metrics/prom implements Recorder with Prometheus
// collectors; importing worker or jobwatch does not pull Prometheus in.
//
//	reg := prometheus.NewRegistry()
//	rec, err := prom.New(reg)                     // kubeworker_* collectors
//	cfg, err := kubeconfig.Load(kubeconfig.Options{Metrics: rec})
//	w, err := worker.New(kubernetes.NewForConfigOrDie(cfg), worker.Options{Metrics: rec})
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// # API requests, in all and per run
//
// [WrapTransport] wraps a client's transport (rest.Config.Wrap) so that
// every request through it is counted, by verb and resource as the API
// server names them (the path is parsed as the API server's request info
// parses it), with its status code. So creates, gets, lists, watches and
// their restarts, log streams and their reconnects, and event lists are
// all counted, and so are client-go's own retries: each is a request the
// API server serves.
//
// A run's own requests are those made with a context that carries its
// [RequestCount] ([WithRequestCount]); the transport adds each request to
// the count found in the request's context. The shared watch streams of
// jobwatch run on the Watcher's own context, so their lists and watches
// are counted once, in the Recorder, and charged to no run: a run costs
// what it alone causes (its create, the log streams of its pods or the
// one read of its log's tail, a get or a pod list when the shared cache
// cannot answer, the event lists of a diagnosis), whatever the number of
// runs sharing the streams.
//
// # Many clusters
//
// A Worker that runs Jobs in several clusters records each cluster's
// facts and requests apart: it calls [ForCluster] once per cluster it
// talks to, and gives the Recorder it returns to that cluster's parts and
// transport. A [ClusterRecorder] (metrics/prom's Recorder) then labels
// every metric with cluster, the cluster's name or UID; any other
// Recorder records every cluster together.
//
// # Why an interface of methods, and not a registry
//
// The core packages record a dozen facts. One small interface, with a
// method per fact and no labels beyond those facts carry, keeps them free
// of any metrics library and lets a test count what happened with a
// plain struct. Implementations should embed [Discard], so that a method
// added later has a no-op default.
package metrics

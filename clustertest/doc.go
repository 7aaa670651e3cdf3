// Package clustertest runs a real, local Kubernetes control plane for the
// tests of anything that runs Jobs: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler, built from their Go modules,
// with kwok playing the kubelet of fake nodes. No Docker, no containers:
// a Job's pods go through their phases as annotations script them, and the
// real Job controller, garbage collector and RBAC do the rest. Everything
// binds and dials 127.0.0.1 only. kubeworker's own tests use it.
//
// # A test binary with a cluster
//
//	var cluster *clustertest.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(clustertest.Main(m, &cluster, clustertest.Options{}))
//	}
//
//	func TestMyScheduler(t *testing.T) {
//		ns := cluster.NewNamespace(t) // deleted when the test ends
//		client := kubernetes.NewForConfigOrDie(cluster.Config())
//		// create a Job in ns with pod template annotations such as
//		// clustertest.AnnotationExitCode: "3" and follow it
//	}
//
// [Main] starts one cluster per test binary, runs the tests, stops it, and
// fails the binary (it never skips) when the cluster cannot start or a
// goroutine is left behind. [Start] and [Cluster.Stop] do the same by
// hand; [Cluster.Config] and [Cluster.Kubeconfig] are the admin's client
// config and kubeconfig file; [Cluster.UserConfig] and
// [Cluster.ServiceAccountToken] give identities with only the permissions
// RBAC grants them; [Cluster.AddNode] adds a node of a chosen size.
//
// # Binaries and start-up
//
// The versions are pinned by this package: Kubernetes v1.37.2, etcd
// v3.6.16, kwok v0.8.0. [Provision] builds them once per user into a cache
// directory ([Options.CacheDir], default $KUBEWORKER_CACHE_DIR, else the
// user cache directory), printing each step to [Options.Progress]; it
// needs only the go command and the Go module proxy. Cold, that is about
// 15 minutes on two idle cores (25 with a cold module cache, far longer on
// a busy machine), more than go test's default timeout: run
// `go run github.com/kubeworker/kubeworker/cmd/kubeworker cluster provision`
// first. Warm, a cluster starts in about 6 seconds (the API server is
// ready in 4) and a first Job completes about 9 seconds after the start;
// each takes about 700 MiB of memory. When a build fails, the error names
// the cache directory and the step or tool that failed.
//
// # Pod fates
//
// Annotations on a Job's pod template choose what happens to its pods;
// each constant's doc says what it does (see [AnnotationPrefix]):
//
//	template:
//	  metadata:
//	    annotations:
//	      test.kubeworker.io/exit-code: "3"          # every container exits 3
//	      test.kubeworker.io/exit-code.sidecar: "0"  # one container's own
//	      test.kubeworker.io/reason: OOMKilled       # with exit code 137: an OOM kill
//	      test.kubeworker.io/delay: 2s               # Running for 2 s first
//	      test.kubeworker.io/jitter: 5s              # ... or up to 5 s
//	      test.kubeworker.io/log: "line 1\nline 2"   # the containers' log
//	      test.kubeworker.io/log-partial: "true"     # ... ending without a newline
//	      test.kubeworker.io/evict: "The node was low on resource: memory."
//	      test.kubeworker.io/image-pull: ErrImagePull  # never pulls, stays Pending
//	      test.kubeworker.io/stuck-terminating: "true" # once deleted, stays Terminating
//	      test.kubeworker.io/fail-attempts: "1"      # the Job's first pod exits 1
//
// A pod with no annotation runs and succeeds at once with an empty log. A
// pod that asks for more CPU than any node has stays Pending, Unschedulable,
// with the real scheduler's event. [Cluster.AppendPodLog] adds log lines
// to a running pod. A pod whose deletion has begun is deleted at once,
// unless it has [AnnotationStuckTerminating]: then it stays Terminating
// until a delete with a grace period of 0 (kubectl delete --force).
//
// # Faults
//
//   - [Cluster.RestartAPIServer] with syscall.SIGKILL: every connection
//     drops at once (a client-go watch channel just closes); with
//     syscall.SIGTERM: a graceful restart, watches end within 2 s. The new
//     API server serves the same port about 3 s later.
//   - [Cluster.RestartControllerManager] with syscall.SIGKILL or SIGTERM:
//     the controllers (the Job controller among them) stop, and a new
//     kube-controller-manager takes over, usually within a second.
//   - [Cluster.CompactEtcd]: every older resourceVersion expires, so a
//     watch or list from one gets 410 Gone, as after etcd's compaction.
//   - [Cluster.Proxy] sits in front of the API server ([Cluster.ProxyConfig]
//     talks through it): [Proxy.CutAll] cuts every open connection (a
//     client sees "connection reset" or "http2: client connection force
//     closed"), [Proxy.CutNextAfterResponse] lets the server do one request
//     and then drops its answer (an ambiguous failure: did the create
//     happen?), and [Proxy.Refuse] answers matching requests with 503.
//     [Proxy.Stats] counts requests, also per User-Agent.
//
// # Kueue
//
// Kueue v0.17.0, the Kubernetes batch queue, is an optional part that
// only a test binary calling [Cluster.StartKueue] pays for: about 3
// seconds warm on two cores (up to 7 when they are busy), once per
// cluster, most of it for the API server to establish Kueue's eleven CRDs
// (its manager is ready in 0.3 s). [Cluster.AddQueue] then makes a ResourceFlavor, ClusterQueue and
// LocalQueue in one call, and [Cluster.AddWorkloadPriorityClass] a
// priority:
//
//	if err := cluster.StartKueue(ctx); err != nil { ... }
//	err := cluster.AddQueue(ctx, clustertest.QueueOptions{Namespace: ns, CPU: "1"})
//	// A Job labelled kueue.x-k8s.io/queue-name: queue, created with
//	// spec.suspend: true, gets a Workload (labelled kueue.x-k8s.io/job-uid);
//	// Kueue admits it within quota and unsuspends the Job, or keeps it
//	// suspended (condition QuotaReserved False, reason Pending) until
//	// quota frees up.
//
// Kueue is built only when asked: `kubeworker cluster provision --kueue`
// (or [Options.Kueue]) adds about 5.5 minutes to a cold build on two idle
// cores (8.7 measured on busy ones) and 125 MB to the cache. A StartKueue
// that finds it missing builds it then.
//
// Kueue manages only Jobs labelled kueue.x-k8s.io/queue-name: it runs
// with only the batch/job integration and manageJobsWithoutQueueName
// false, and its Job webhooks select only labelled Jobs, so the other
// tests' Jobs in the same cluster get no Workload and are never
// suspended. [Cluster.StopKueue] kills Kueue and leaves its webhooks
// registered: labelled Jobs are then refused ("failed calling webhook"),
// as in a cluster whose Kueue is down, until StartKueue runs it again.
//
// Unlike Kueue installed from its manifests, it runs as a process on
// 127.0.0.1 as a system:masters user, not as a Deployment with its RBAC;
// its webhooks (CRD conversion too) are called by URL with a certificate
// from the cluster's CA, its internal certificate management off; only
// the webhooks of its own kinds and of Jobs are registered; and the build
// changes one line of its source, to read the metrics certificate from
// the cluster's directory instead of /etc/kueue, and sets at link time
// where its visibility server reads its certificate (a fixed /visibility
// in Kueue).
//
// Kueue's visibility API (visibility.kueue.x-k8s.io v1beta2 and v1beta1:
// a LocalQueue's or ClusterQueue's pending workloads, with their
// positions) is served, as an aggregated API: the API server calls it,
// with front-proxy authentication (the front-proxy-client certificate),
// through the APIServices and the Service kueue-system/visibility-server
// that Kueue's manifests register. There is no kube-proxy, so everything
// the API server dials in the cluster (kubelets, webhooks, aggregated APIs)
// goes through the cluster's egress proxy (kube-apiserver's egress
// selector, HTTP CONNECT over a Unix socket), which maps the Service's
// ClusterIP to the visibility server's loopback port and dials nothing but
// 127.0.0.1.
//
// # What is not simulated
//
// There are no containers and no kubelet: nothing runs an image, so
// commands, probes, volumes, resource limits and OOM kills happen only as
// annotations script them; kwok's stages move pod phases, container states
// and logs. Image pulls, networking between pods, Services and DNS do not
// exist. The controllers run are the Job controller, garbage collector,
// namespace, service account, TTL-after-finished and pod GC controllers,
// plus the scheduler; others (Deployments, ReplicaSets, nodes' lifecycle)
// do not run.
package clustertest

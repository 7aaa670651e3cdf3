// Package testcluster runs a real, local Kubernetes control plane for
// kubeworker's tests and demos: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler built from their Go modules,
// with kwok playing the kubelet of fake nodes. Everything binds and dials
// 127.0.0.1 only.
//
//	var cluster *testcluster.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(testcluster.Main(m, &cluster, testcluster.Options{}))
//	}
//
//	func TestSomething(t *testing.T) {
//		ns := cluster.NewNamespace(t)
//		client := kubernetes.NewForConfigOrDie(cluster.Config())
//		// create a Job in ns; annotate its pod template to script the pod
//	}
//
// # Binaries
//
// [Provision] builds the binaries once per user into a cache directory
// (cold, about 15 minutes on two idle cores; far longer on a busy machine); the command
// `go run ./internal/testcluster/cmd/testcluster provision` does it ahead
// of `go test`. `... testcluster up` runs a cluster for kubectl and the
// examples.
//
// # Pods
//
// There are no containers: kwok moves pods through their phases as
// stages say, and annotations on the pod template choose the outcome
// (exit codes, delay, eviction, OOM kill, image pull failure, log lines);
// see [AnnotationPrefix] for the list. Real controllers run: the Job
// controller, garbage collector, namespace and service-account
// controllers, TTL-after-finished and pod GC, so a Job's life is real.
//
// # Faults
//
// [Cluster.RestartAPIServer] kills or terminates the API server and
// starts it again on the same port. [Cluster.CompactEtcd] makes old
// resourceVersions expire (410 Gone). The [Proxy] in front of the API
// server cuts every open connection ([Proxy.CutAll]) or drops one request
// after the server has done it ([Proxy.CutNextAfterResponse]).
//
// # Identities
//
// [Cluster.Config] is the admin. [Cluster.UserConfig] mints a user from
// the cluster CA, and [Cluster.ServiceAccountToken] gets a service
// account's token, which also works through the proxy; RBAC is enforced.
package testcluster

package worker

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kubeworker/kubeworker/clusterid"
	"github.com/kubeworker/kubeworker/kubeconfig"
	"github.com/kubeworker/kubeworker/manifest"
	"github.com/kubeworker/kubeworker/metrics"
)

// clusterParts is one cluster's parts: the Worker's own, one of
// Options.Clusters, or a run's. Parts.Preparer is not used: a Worker has
// one.
type clusterParts struct {
	name string
	// client is nil for the own cluster when every part was given.
	client     kubernetes.Interface
	parts      Parts
	namespaces []string // List, Sweep and Start; nil: the Worker's
	metrics    metrics.Recorder
	// startErr is the error of the last Start of this cluster, for Ready.
	startErr atomic.Pointer[error]
}

// clusterSet holds a Worker's clusters and routes runs and PIDs to them.
type clusterSet struct {
	w     *Worker
	own   *clusterParts
	named []*clusterParts // Options.Clusters, in order
	// byFingerprint finds Options.Clusters by their connection, so a
	// run's kubeconfig that connects as one of them shares its parts.
	byFingerprint map[string]*clusterParts

	mu     sync.Mutex // guards runs; taken before a runCluster's mu
	runs   map[string]*runCluster
	closed atomic.Bool
}

// runCluster is a cluster a run's cluster_config reached, by its
// connection (kubeconfig.Fingerprint). Its parts are made on first use,
// shared by every run to it, and let go after RunClusters.IdleTimeout
// unused; its config and UID are kept, so Attach and Kill still find it.
type runCluster struct {
	cfg *rest.Config
	// uid is the cluster's UID once read; read without mu, so that
	// routing a PID never waits for a connect in progress.
	uid atomic.Pointer[string]

	mu    sync.Mutex    // guards the fields below
	c     *clusterParts // nil while let go
	refs  int           // users of c
	gen   int           // bumped to cancel a pending let-go
	timer *time.Timer   // the pending let-go, if any
	// connecting is closed when the connect in progress ends; nil if none.
	connecting chan struct{}
	// retired are the secret stores of the parts let go, closed by Close.
	retired []SecretStore
}

// uidOf returns rc's UID, "" until read.
func (rc *runCluster) uidOf() string {
	if p := rc.uid.Load(); p != nil {
		return *p
	}
	return ""
}

// noRelease is the release of a cluster that is never let go.
func noRelease() {}

// forRun returns the cluster a run whose template rendered cc goes to,
// and a func to call when the run no longer uses it.
func (s *clusterSet) forRun(ctx context.Context, cc *manifest.ClusterConfig) (*clusterParts, func(), error) {
	if cc == nil {
		return s.own, noRelease, nil
	}
	if cc.Config == nil {
		for _, c := range s.named {
			if c.name == cc.Context {
				return c, noRelease, nil
			}
		}
		return nil, nil, fmt.Errorf("cluster_config: no config, and context_name %q names no cluster of Options.Clusters", cc.Context)
	}
	opts := s.w.opts.RunClusters
	if !opts.Allow {
		return nil, nil, fmt.Errorf("cluster_config: %w", ErrRunClustersOff)
	}
	cfg, err := kubeconfig.Load(kubeconfig.Options{KubeconfigMap: cc.Config, Context: cc.Context, Untrusted: !opts.AllowUnsafeKubeconfigs})
	if err != nil {
		return nil, nil, fmt.Errorf("cluster_config.config: %w", err)
	}
	key := kubeconfig.Fingerprint(cfg)
	if c := s.byFingerprint[key]; c != nil {
		return c, noRelease, nil
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return nil, nil, ErrClosed
	}
	rc := s.runs[key]
	if rc == nil {
		rc = &runCluster{cfg: cfg}
		s.runs[key] = rc
	}
	s.mu.Unlock()
	c, release, err := s.use(ctx, rc)
	if err != nil && rc.uidOf() == "" {
		// Never reached: keep no entry (nor its credentials) for it.
		s.mu.Lock()
		if s.runs[key] == rc {
			delete(s.runs, key)
		}
		s.mu.Unlock()
	}
	return c, release, err
}

// use takes a reference on rc, connecting it if it was let go. The
// connect (a UID read, retried) runs without rc.mu: callers for the same
// cluster wait for it, each until its own ctx ends; Close, List and
// Sweep do not.
func (s *clusterSet) use(ctx context.Context, rc *runCluster) (*clusterParts, func(), error) {
	for {
		rc.mu.Lock()
		rc.gen++ // a pending let-go is off
		rc.stopTimer()
		if s.closed.Load() {
			rc.mu.Unlock()
			return nil, nil, ErrClosed
		}
		if rc.c != nil {
			rc.refs++
			c := rc.c
			rc.mu.Unlock()
			var once sync.Once
			return c, func() { once.Do(func() { s.release(rc) }) }, nil
		}
		if wait := rc.connecting; wait != nil {
			rc.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		done := make(chan struct{})
		rc.connecting = done
		rc.mu.Unlock()

		c, err := s.connect(ctx, rc)
		rc.mu.Lock()
		rc.connecting = nil
		close(done)
		switch {
		case err != nil:
			rc.mu.Unlock()
			return nil, nil, fmt.Errorf("cluster_config: %w", err)
		case s.closed.Load():
			rc.mu.Unlock()
			c.parts.Waiter.Close() // nothing ran in it yet
			return nil, nil, ErrClosed
		}
		rc.c = c
		rc.mu.Unlock()
	}
}

// stopTimer stops rc's pending let-go timer, if any; rc.mu is held.
func (rc *runCluster) stopTimer() {
	if rc.timer != nil {
		rc.timer.Stop()
		rc.timer = nil
	}
}

// connect makes rc's parts.
func (s *clusterSet) connect(ctx context.Context, rc *runCluster) (*clusterParts, error) {
	o := &s.w.opts
	uid := rc.uidOf()
	if uid == "" {
		client, err := kubernetes.NewForConfig(rc.cfg)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		uid, err = clusterid.New(client, clusterid.Options{Logger: o.Logger, Retry: o.Retry, LookupEnv: noEnv}).UID(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the cluster's UID: %w", err)
		}
		rc.uid.Store(&uid)
	}
	c, err := s.w.newCluster(uid, rc.cfg, uid, nil)
	if err != nil {
		return nil, err
	}
	o.Logger.Info("connected to a run's cluster", "cluster", c.name, "host", redactedHost(rc.cfg.Host))
	return c, nil
}

// redactedHost is host without a password, fit for a log.
func redactedHost(host string) string {
	u, err := url.Parse(host)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// release drops a reference on rc; the last one starts its idle timer.
func (s *clusterSet) release(rc *runCluster) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.refs--
	if rc.refs > 0 || s.closed.Load() {
		return // in use, or Close closes it
	}
	rc.gen++
	gen := rc.gen
	idle := s.w.opts.RunClusters.IdleTimeout
	if idle == 0 {
		idle = DefaultClusterIdleTimeout
	}
	rc.stopTimer()
	rc.timer = time.AfterFunc(idle, func() { s.letGo(rc, gen) })
}

// letGo closes rc's streams if nothing used it since the release that
// began generation gen. Its secret store is kept for Close: the Secrets
// it made (the API-key Secret) may serve the runs of a later connect.
func (s *clusterSet) letGo(rc *runCluster, gen int) {
	if !s.w.enter() {
		return // Close closes it
	}
	defer s.w.running.Done()
	rc.mu.Lock()
	c := rc.c
	if rc.gen != gen || rc.refs > 0 || c == nil {
		rc.mu.Unlock()
		return
	}
	rc.c, rc.timer = nil, nil
	rc.retired = append(rc.retired, c.parts.Store)
	rc.mu.Unlock()
	s.w.log.Info("let go of a run's cluster, unused", "cluster", c.name)
	c.parts.Waiter.Close()
}

// forPID returns the cluster whose UID pid names, with the cluster_config
// hint returns (that of the run's values, if any) tried last. A PID of no
// known cluster is an *UnknownClusterError.
func (s *clusterSet) forPID(ctx context.Context, pid clusterid.PID, hint func() *manifest.ClusterConfig) (*clusterParts, func(), error) {
	here, err := s.own.parts.Identity.PID(ctx, pid.Namespace, pid.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("read this cluster's UID: %w", err)
	}
	if here.ClusterUID == pid.ClusterUID {
		return s.own, noRelease, nil
	}
	known := []string{here.ClusterUID}
	var errs []error
	for _, c := range s.named {
		p, err := c.parts.Identity.PID(ctx, pid.Namespace, pid.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("read the UID of cluster %s: %w", c.name, err))
			continue
		}
		if p.ClusterUID == pid.ClusterUID {
			return c, noRelease, nil
		}
		known = append(known, p.ClusterUID)
	}
	s.mu.Lock()
	var matches []*runCluster
	for _, rc := range s.runs {
		uid := rc.uidOf()
		if uid == pid.ClusterUID {
			matches = append(matches, rc)
		} else if uid != "" {
			known = append(known, uid)
		}
	}
	s.mu.Unlock()
	// Several connections may reach one cluster (runs with different
	// credentials): take one that is connected, else any.
	var match *runCluster
	for _, rc := range matches {
		rc.mu.Lock()
		connected := rc.c != nil
		rc.mu.Unlock()
		if match == nil || connected {
			match = rc
		}
		if connected {
			break
		}
	}
	if match != nil {
		return s.use(ctx, match)
	}
	if cc := hintOf(hint); cc != nil {
		c, release, err := s.forRun(ctx, cc)
		if err != nil {
			return nil, nil, errors.Join(append(errs, fmt.Errorf("the cluster_config of the values: %w", err))...)
		}
		uid, err := c.parts.Identity.PID(ctx, pid.Namespace, pid.Name)
		if err == nil && uid.ClusterUID == pid.ClusterUID {
			return c, release, nil
		}
		release()
		if err != nil {
			return nil, nil, errors.Join(append(errs, fmt.Errorf("the cluster_config of the values: read its UID: %w", err))...)
		}
		known = append(known, uid.ClusterUID)
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("find the cluster of PID %s: %w", pid, errors.Join(errs...))
	}
	return nil, nil, &UnknownClusterError{PID: pid, Known: known}
}

func hintOf(hint func() *manifest.ClusterConfig) *manifest.ClusterConfig {
	if hint == nil {
		return nil
	}
	return hint()
}

// upFront returns the Worker's own cluster and those of Options.Clusters.
func (s *clusterSet) upFront() []*clusterParts {
	return append([]*clusterParts{s.own}, s.named...)
}

// all returns every cluster the Worker knows now, its own first, with a
// func to call when done with them.
func (s *clusterSet) all() ([]*clusterParts, func()) {
	out := s.upFront()
	var releases []func()
	s.mu.Lock()
	runs := make([]*runCluster, 0, len(s.runs))
	for _, rc := range s.runs {
		runs = append(runs, rc)
	}
	s.mu.Unlock()
	for _, rc := range runs {
		rc.mu.Lock()
		if rc.c != nil {
			rc.refs++
			rc.gen++
			rc.stopTimer()
			out = append(out, rc.c)
			releases = append(releases, func() { s.release(rc) })
		}
		rc.mu.Unlock()
	}
	return out, func() {
		for _, r := range releases {
			r()
		}
	}
}

// clusterStore is a cluster's secret store, for Close.
type clusterStore struct {
	cluster string
	store   SecretStore
}

// close closes every cluster's Waiter, for Worker.Close, and returns the
// secret stores to close once no run is left: those of the clusters
// connected, and those of run clusters let go.
func (s *clusterSet) close() []clusterStore {
	s.mu.Lock()
	s.closed.Store(true)
	runs := s.runs
	s.mu.Unlock()
	parts := s.upFront()
	var stores []clusterStore
	for _, rc := range runs {
		rc.mu.Lock()
		if rc.c != nil {
			parts = append(parts, rc.c)
		}
		for _, st := range rc.retired {
			stores = append(stores, clusterStore{rc.uidOf(), st})
		}
		rc.retired = nil
		rc.stopTimer()
		rc.gen++
		rc.mu.Unlock()
	}
	for _, c := range parts {
		c.parts.Waiter.Close()
		stores = append(stores, clusterStore{c.name, c.parts.Store})
	}
	return stores
}

// noEnv is a LookupEnv with no variables: clusterid's EnvUID names the
// Worker's own cluster, never another.
func noEnv(string) (string, bool) { return "", false }

// withMetrics returns a copy of cfg whose transport records to rec.
func withMetrics(cfg *rest.Config, rec metrics.Recorder) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(metrics.WrapTransport(rec))
	return cfg
}

package worker

import (
	"context"
	"errors"
	"fmt"
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
	// run is the run's cluster this is, nil for the own and Options' ones.
	run *runCluster
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
	return s.use(ctx, rc)
}

// use takes a reference on rc, connecting it if it was let go.
func (s *clusterSet) use(ctx context.Context, rc *runCluster) (*clusterParts, func(), error) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.gen++ // a pending let-go is off
	if s.closed.Load() {
		return nil, nil, ErrClosed
	}
	if rc.c == nil {
		c, err := s.connect(ctx, rc)
		if err != nil {
			return nil, nil, fmt.Errorf("cluster_config: %w", err)
		}
		rc.c = c
	}
	rc.refs++
	var once sync.Once
	return rc.c, func() { once.Do(func() { s.release(rc) }) }, nil
}

// connect makes rc's parts; rc.mu is held.
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
	c.run = rc
	o.Logger.Info("connected to a run's cluster", "cluster", c.name, "host", rc.cfg.Host)
	return c, nil
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
	rc.timer = time.AfterFunc(idle, func() { s.letGo(rc, gen) })
}

// letGo closes rc's parts if nothing used it since the release that
// began generation gen.
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
	rc.c = nil
	rc.mu.Unlock()
	s.w.log.Info("let go of a run's cluster, unused", "cluster", c.name)
	c.close(context.Background(), s.w.log)
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
	var match *runCluster
	for _, rc := range s.runs {
		uid := rc.uidOf()
		if uid == pid.ClusterUID {
			match = rc
		} else if uid != "" {
			known = append(known, uid)
		}
	}
	s.mu.Unlock()
	if match != nil {
		return s.use(ctx, match)
	}
	if cc := hintOf(hint); cc != nil {
		c, release, err := s.forRun(ctx, cc)
		if err != nil {
			return nil, nil, err
		}
		uid, err := c.parts.Identity.PID(ctx, pid.Namespace, pid.Name)
		if err == nil && uid.ClusterUID == pid.ClusterUID {
			return c, release, nil
		}
		release()
		if err != nil {
			return nil, nil, err
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

// close closes every cluster's Waiter, for Worker.Close; closeStores then
// closes their stores, once no run is left.
func (s *clusterSet) close() []*clusterParts {
	s.mu.Lock()
	s.closed.Store(true)
	runs := s.runs
	s.mu.Unlock()
	out := s.upFront()
	for _, rc := range runs {
		rc.mu.Lock()
		if rc.c != nil {
			out = append(out, rc.c)
		}
		if rc.timer != nil {
			rc.timer.Stop()
		}
		rc.gen++
		rc.mu.Unlock()
	}
	for _, c := range out {
		c.parts.Waiter.Close()
	}
	return out
}

// close closes c's Waiter and store, for a cluster let go.
func (c *clusterParts) close(ctx context.Context, log interface {
	WarnContext(context.Context, string, ...any)
}) {
	c.parts.Waiter.Close()
	if err := c.parts.Store.Close(ctx); err != nil {
		log.WarnContext(ctx, "could not delete the Secrets of a cluster let go", "cluster", c.name, "error", err)
	}
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

package clusterid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubeworker/kubeworker/retry"
)

// EnvUID is the environment variable that gives the cluster UID when
// [Options.UID] is empty, for a worker that may not read the kube-system
// namespace.
const EnvUID = "KUBEWORKER_CLUSTER_UID"

// UIDNamespace is the namespace whose metadata.uid serves as the cluster
// UID. Kubernetes has no cluster ID; kube-system exists in every cluster and
// is never deleted, so its UID lasts as long as the cluster's etcd data.
const UIDNamespace = "kube-system"

// Options configures a [Cluster]. The zero value works.
type Options struct {
	// UID is the cluster UID. Default: the value of EnvUID, if set and not
	// empty, else the metadata.uid of the kube-system namespace, read once.
	UID string
	// LookupEnv reads EnvUID. Default: os.LookupEnv. Tests pass a map's
	// lookup so that the process environment does not leak in.
	LookupEnv func(key string) (string, bool)
	// Logger receives a Debug line per UID read, per retry and per Kill.
	// Default: discard.
	Logger *slog.Logger
	// Retry paces the retries of the UID read and of Kill's delete on a
	// transient failure (retry.Retriable). Default: the zero retry.Policy,
	// back-off with jitter for up to retry.DefaultDeadline, never past the
	// caller's context.
	Retry retry.Policy
}

// Cluster knows which cluster a client talks to: its UID, read at most
// once, and the PIDs of its Jobs, which it can kill. Its methods are safe
// for concurrent use.
type Cluster struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger

	mu     sync.Mutex // guards uid and flight
	uid    string     // the UID once known; never reset
	flight *uidRead   // the read in progress, if any
}

// uidRead is one read of the UID that concurrent callers share. uid and
// err are written before done is closed and never after.
type uidRead struct {
	done chan struct{}
	uid  string
	err  error
}

// New returns a Cluster that reads and kills through client, which may be
// a real clientset or a fake one. client may be nil if opts or the
// environment give the UID and Kill is never called.
func New(client kubernetes.Interface, opts Options) *Cluster {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Cluster{client: client, opts: opts, log: log}
}

// UID returns the cluster's UID: Options.UID, else the EnvUID environment
// variable, else the metadata.uid of the kube-system namespace. A UID from
// options or environment is checked as [PID.Validate] checks one (no ":"
// and no space) and returned without any API call.
//
// The namespace is read at most once per Cluster, on first use. Callers
// that arrive while that read is under way wait for it and share its result
// instead of sending their own; each stops waiting when its own ctx ends.
// A failed read is not cached: the next call tries again. If the caller
// that sends the read gives up (its ctx ends), a waiter whose ctx is still
// live sends a new read rather than inherit that error.
//
// The read is retried on what retry.Retriable calls transient (timeouts,
// 429, 5xx, dropped connections) under Options.Retry: back-off with
// jitter, or the server's Retry-After, for up to retry.DefaultDeadline by
// default and never past ctx; a 4xx such as Forbidden fails at once.
//
// A failure wraps the API error, so apierrors.IsForbidden and the like see
// through it; on Forbidden or Unauthorized the message says to set
// Options.UID or EnvUID instead.
func (c *Cluster) UID(ctx context.Context) (string, error) {
	if uid, ok, err := c.configuredUID(); ok {
		return uid, err
	}
	for {
		c.mu.Lock()
		if c.uid != "" {
			uid := c.uid
			c.mu.Unlock()
			return uid, nil
		}
		f := c.flight
		if f == nil {
			f = &uidRead{done: make(chan struct{})}
			c.flight = f
			c.mu.Unlock()
			c.read(ctx, f)
			return f.uid, f.err
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("clusterid: wait for the cluster UID: %w", context.Cause(ctx))
		case <-f.done:
		}
		if f.err == nil {
			return f.uid, nil
		}
		if !isContextError(f.err) || ctx.Err() != nil {
			return "", f.err
		}
		// The reader's context ended, not ours: read again.
	}
}

// read sends the read for f, publishes its result and ends the flight.
// Waiters are released even if the client panics.
func (c *Cluster) read(ctx context.Context, f *uidRead) {
	f.err = errors.New("clusterid: the cluster UID read panicked")
	defer func() {
		c.mu.Lock()
		if f.err == nil {
			c.uid = f.uid
		}
		c.flight = nil
		c.mu.Unlock()
		close(f.done)
	}()
	f.uid, f.err = c.readNamespace(ctx)
}

func (c *Cluster) readNamespace(ctx context.Context) (string, error) {
	if c.client == nil {
		return "", fmt.Errorf("clusterid: no client to read namespace %s with; set Options.UID or %s", UIDNamespace, EnvUID)
	}
	p := c.opts.Retry.Notifying(func(err error, wait time.Duration) {
		c.log.DebugContext(ctx, "retrying the cluster UID read", "namespace", UIDNamespace, "wait", wait, "error", err)
	})
	ns, err := retry.Value(ctx, p, func(ctx context.Context) (*corev1.Namespace, error) {
		return c.client.CoreV1().Namespaces().Get(ctx, UIDNamespace, metav1.GetOptions{})
	})
	if err != nil {
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
			return "", fmt.Errorf("clusterid: read namespace %s for the cluster UID (if this identity may not, set Options.UID or %s): %w", UIDNamespace, EnvUID, err)
		}
		return "", fmt.Errorf("clusterid: read namespace %s for the cluster UID: %w", UIDNamespace, err)
	}
	uid := string(ns.UID)
	if reason := checkUID(uid); reason != "" {
		return "", fmt.Errorf("clusterid: namespace %s: metadata.uid %s", UIDNamespace, reason)
	}
	c.log.DebugContext(ctx, "read the cluster UID", "namespace", UIDNamespace, "uid", uid)
	return uid, nil
}

// configuredUID returns the UID from options or environment; ok is false
// when neither gives one.
func (c *Cluster) configuredUID() (uid string, ok bool, err error) {
	source := "Options.UID"
	uid = c.opts.UID
	if uid == "" {
		source = EnvUID
		uid, _ = c.opts.LookupEnv(EnvUID)
	}
	if uid == "" {
		return "", false, nil
	}
	if reason := checkUID(uid); reason != "" {
		return "", true, fmt.Errorf("clusterid: cluster UID from %s %s", source, reason)
	}
	return uid, true, nil
}

// PID returns the PID of the Job namespace/name in this cluster.
func (c *Cluster) PID(ctx context.Context, namespace, name string) (PID, error) {
	uid, err := c.UID(ctx)
	if err != nil {
		return PID{}, err
	}
	p := PID{ClusterUID: uid, Namespace: namespace, Name: name}
	if err := p.Validate(); err != nil {
		return PID{}, err
	}
	return p, nil
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

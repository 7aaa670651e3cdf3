package clustertest

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// Options configures [Provision] and [Start]. The zero value works.
type Options struct {
	// CacheDir is where the built binaries are kept, in a subdirectory per
	// set of versions, shared by every test binary and session of the user.
	// Default: $KUBEWORKER_CACHE_DIR/testcluster if that is set, else
	// os.UserCacheDir()/kubeworker/clustertest.
	CacheDir string

	// TempDir is where a cluster's working directory (PKI, etcd data,
	// process logs, pod log files) is made; Stop removes it.
	// Default: os.TempDir().
	TempDir string

	// Progress receives one line per build step and start phase, with the
	// time taken. Default: discard ([Main] and the command use os.Stderr).
	Progress io.Writer

	// Logger receives errors of the harness's own background work, such as
	// setting up a pod's logs. Default: discard.
	Logger *slog.Logger

	// WatchCache turns on the API server's watch cache. Default: off
	// (--watch-cache=false). With the cache off, every watch is served by
	// etcd, so after [Cluster.CompactEtcd] a watch from an older
	// resourceVersion gets a real 410 Gone. With it on, the API server
	// replays old events from memory and compaction makes no difference;
	// only a resourceVersion from before its cache started gets 410 (for
	// example one taken before [Cluster.RestartAPIServer]).
	WatchCache bool

	// StartTimeout bounds the start of each component. Default: 2 minutes.
	StartTimeout time.Duration

	// Kueue makes [Provision] (and so [Start]) build Kueue too, if it is
	// missing from the cache. It starts nothing: [Cluster.StartKueue] does,
	// and builds Kueue itself on first use if it must. Default: false.
	Kueue bool
}

func (o Options) progress() io.Writer {
	if o.Progress == nil {
		return io.Discard
	}
	return o.Progress
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) startTimeout() time.Duration {
	return cmp.Or(o.StartTimeout, 2*time.Minute)
}

// binDir is the cache directory for this set of versions.
func (o Options) binDir() (string, error) {
	root := o.CacheDir
	if root == "" {
		if env := os.Getenv("KUBEWORKER_CACHE_DIR"); env != "" {
			root = filepath.Join(env, "testcluster")
		} else {
			user, err := os.UserCacheDir()
			if err != nil {
				return "", fmt.Errorf("find the cache directory (set KUBEWORKER_CACHE_DIR): %w", err)
			}
			root = filepath.Join(user, "kubeworker", "testcluster")
		}
	}
	return filepath.Join(root, versionKey()), nil
}

// versionKey names the cache subdirectory: a change of any version or
// platform builds afresh.
func versionKey() string {
	return fmt.Sprintf("k8s-%s_etcd-%s_kwok-%s_%s-%s",
		kubernetesVersion, etcdVersion, kwokVersion, runtime.GOOS, runtime.GOARCH)
}

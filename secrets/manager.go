package secrets

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientretry "k8s.io/client-go/util/retry"

	"github.com/kubeworker/kubeworker/retry"
)

// ErrClosed is returned by a [Manager] asked to create a Secret after
// [Manager.Close].
var ErrClosed = errors.New("secrets: manager closed")

// Options configures a [Manager]. The zero value works, except that
// [Manager.UpsertAPIKey], and so [Manager.ReplaceAPIKey] without
// APIKeySecret, needs WorkerName.
type Options struct {
	// WorkerName names the API-key Secret, kubeworker-<slug>-api-key (see
	// [APIKeySecretName]). Default: none.
	WorkerName string

	// APIKeyEnv is the name of the run container's env entry that holds
	// the API key. Default: DefaultAPIKeyEnv.
	APIKeyEnv string

	// APIKeySecret, when its Name is set, is an existing Secret that holds
	// the API key: [Manager.ReplaceAPIKey] then only points the env entry
	// at it and creates no Secret. An empty Key means DataKey. Default:
	// none, so the worker's own Secret is upserted.
	APIKeySecret KeyRef

	// Container names the run's container. Default: the pod's first
	// container.
	Container string

	// KeepExpansionsInline makes [Manager.PrepareRun] leave in the Job
	// spec each plain env value that holds "$(" or "$$", which the kubelet
	// expands or unescapes only in an inline value, never in one that
	// comes from envFrom. Their values are then in the Job spec. Default:
	// false, so such a value is an error (see PrepareRun).
	KeepExpansionsInline bool

	// Backoff paces the retries of a write that conflicts with another.
	// Default: client-go's retry.DefaultRetry (5 tries, 10 ms apart).
	Backoff wait.Backoff

	// Retry paces the retries of every request (read, create, update,
	// delete) on a transient failure, as retry.Retriable defines it:
	// timeouts, 429, 5xx, dropped connections. Default: the zero
	// retry.Policy, back-off with jitter for up to retry.DefaultDeadline,
	// never past the caller's context. A worker.Worker passes its
	// Options.Retry when this is zero.
	Retry retry.Policy

	// Logger receives one Debug line per Secret created, updated, adopted
	// or deleted, naming the Secret and never its data. Default: discard.
	Logger *slog.Logger
}

// Manager creates the Secrets of a worker's runs and deletes them again:
// the API-key Secret ([Manager.ReplaceAPIKey]) and per-run env Secrets
// ([Manager.PrepareRun]). It tracks what it created until [Manager.Close].
// Its methods are safe for concurrent use.
//
// No Secret's data ever reaches the Logger or an error message.
type Manager struct {
	client kubernetes.Interface
	opts   Options
	log    *slog.Logger

	mu      sync.Mutex         // guards the fields below
	created map[Ref]types.UID  // API-key Secrets this Manager created
	runs    map[Ref]*RunSecret // per-run Secrets not yet adopted or discarded
	closed  bool               // set by Close
}

// New returns a Manager that writes Secrets through client, a real
// clientset or a fake one.
func New(client kubernetes.Interface, opts Options) *Manager {
	opts.APIKeyEnv = cmp.Or(opts.APIKeyEnv, DefaultAPIKeyEnv)
	opts.APIKeySecret.Key = cmp.Or(opts.APIKeySecret.Key, DataKey)
	if opts.Backoff.Steps == 0 {
		opts.Backoff = clientretry.DefaultRetry
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		client:  client,
		opts:    opts,
		log:     log,
		created: map[Ref]types.UID{},
		runs:    map[Ref]*RunSecret{},
	}
}

// Ref names a Secret.
type Ref struct {
	Namespace, Name string
}

// String returns "namespace/name".
func (r Ref) String() string { return r.Namespace + "/" + r.Name }

// KeyRef names one key of a Secret in the Job's namespace.
type KeyRef struct {
	Name, Key string
}

// Tracked returns the Secrets that [Manager.Close] would delete now, sorted:
// the API-key Secrets this Manager created and the per-run Secrets
// neither adopted nor discarded.
func (m *Manager) Tracked() []Ref {
	m.mu.Lock()
	defer m.mu.Unlock()
	refs := make([]Ref, 0, len(m.created)+len(m.runs))
	for r := range m.created {
		refs = append(refs, r)
	}
	for r := range m.runs {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, func(a, b Ref) int { return cmp.Compare(a.String(), b.String()) })
	return refs
}

// Close deletes every Secret that [Manager.Tracked] lists and returns the
// errors of the deletions that failed, joined; a Secret already gone, or
// replaced by another of the same name, counts as deleted. A Secret that
// could not be deleted stays tracked, so calling Close again tries again.
// Each delete's transient failure (timeouts, 429, 5xx, dropped
// connections; see retry.Retriable) is retried under Options.Retry, for
// up to its deadline (3 minutes by default) and never past ctx; a 4xx
// such as Forbidden fails at once.
// After Close the Manager creates no more Secrets ([ErrClosed]); Discard
// and Adopt of run Secrets still work.
//
// Close leaves alone the API-key Secrets this Manager only updated (another
// worker of the same name may use them) and the per-run Secrets owned by
// their Job, which the garbage collector deletes with it.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	created := make(map[Ref]types.UID, len(m.created))
	for r, uid := range m.created {
		created[r] = uid
	}
	runs := make([]*RunSecret, 0, len(m.runs))
	for _, rs := range m.runs {
		runs = append(runs, rs)
	}
	m.mu.Unlock()

	var errs []error
	for r, uid := range created {
		if err := m.delete(ctx, r, uid); err != nil {
			errs = append(errs, err)
			continue
		}
		m.mu.Lock()
		delete(m.created, r)
		m.mu.Unlock()
	}
	// Discard serializes with a concurrent Adopt and leaves an adopted
	// Secret alone.
	for _, rs := range runs {
		errs = append(errs, rs.Discard(ctx))
	}
	return errors.Join(errs...)
}

package worker

import (
	"context"
	"errors"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kubeworker/kubeworker/secrets"
)

// SecretsOptions choose how a Worker keeps secrets out of Job specs.
type SecretsOptions struct {
	// APIKey moves the run container's API-key env value into a Secret
	// (see secrets.Manager.ReplaceAPIKey). Default: false.
	APIKey bool
	// Env moves every plain env value of each run into a per-run Secret
	// owned by its Job (see secrets.Manager.PrepareRun). Default: false.
	Env bool
	// Manager tunes the secrets.Manager: worker name, API-key env name, an
	// existing Secret. Its Container defaults to the Worker's.
	Manager secrets.Options
}

// managerStore is the default SecretStore, on a *secrets.Manager.
type managerStore struct {
	m    *secrets.Manager
	opts SecretsOptions
}

func (s *managerStore) Apply(ctx context.Context, job *batchv1.Job) (func(context.Context, *batchv1.Job, error) error, error) {
	if s.opts.APIKey {
		if _, err := s.m.ReplaceAPIKey(ctx, job); err != nil {
			return nil, err
		}
	}
	if !s.opts.Env {
		return func(context.Context, *batchv1.Job, error) error { return nil }, nil
	}
	rs, err := s.m.PrepareRun(ctx, job)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, created *batchv1.Job, cerr error) error {
		if rs == nil {
			return nil
		}
		if cerr != nil {
			return errors.Join(cerr, rs.Discard(ctx))
		}
		return rs.Adopt(ctx, created)
	}, nil
}

func (s *managerStore) Close(ctx context.Context) error { return s.m.Close(ctx) }

// noSecrets is the SecretStore of a Worker that keeps no secrets.
type noSecrets struct{}

func (noSecrets) Apply(context.Context, *batchv1.Job) (func(context.Context, *batchv1.Job, error) error, error) {
	return func(context.Context, *batchv1.Job, error) error { return nil }, nil
}

func (noSecrets) Close(context.Context) error { return nil }

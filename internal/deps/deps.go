//go:build deps

// Package deps pins the module's dependencies while packages are written.
package deps

import (
	_ "github.com/cenkalti/backoff/v4"
	_ "github.com/evanphx/json-patch/v5"
	_ "github.com/kballard/go-shellquote"
	_ "go.uber.org/goleak"
	_ "github.com/google/go-cmp/cmp"
	_ "golang.org/x/text/unicode/norm"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/yaml"
)

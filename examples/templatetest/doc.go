// Package templatetest shows how a team unit-tests its own kubeworker
// template with no cluster: render it for fixed values, prepare it for a
// fixed run, and compare the Job with a golden file through
// manifest/manifesttest (template_test.go). Copy the pattern; run
// `KUBEWORKER_UPDATE_GOLDEN=1 go test` after an intended change.
package templatetest

import _ "embed"

// Template is the team's Job template.
//
//go:embed template.yaml
var Template []byte

package kubeconfig

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// secret is the token of every test kubeconfig; no error may show it.
const secret = "s3cret-token-never-in-an-error"

// testKubeconfig is a kubeconfig whose one user ("ci") and one cluster
// ("c"), used by context "dev", get the extra flow-mapping fields given.
func testKubeconfig(userExtra, clusterExtra string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443", %s}
users:
- name: ci
  user: {token: %s, %s}
contexts:
- name: dev
  context: {cluster: c, user: ci}
`, clusterExtra, secret, userExtra)
}

// tempFile writes content to a new file and returns its path.
func tempFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fields returns the Field of every *UntrustedError and *InvalidError
// in err, in order.
func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case *UntrustedError:
			out = append(out, e.Field)
		case *InvalidError:
			out = append(out, e.Field)
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

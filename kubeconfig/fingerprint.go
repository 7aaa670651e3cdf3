package kubeconfig

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"k8s.io/client-go/rest"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Fingerprint returns a sha256 of all that makes cfg's connection
// distinct, in hex: Host, APIPath, DisableCompression, every credential
// (BearerToken, BearerTokenFile, Username, Password, the TLS client
// certificate and key, AuthProvider, ExecProvider), Impersonate, the TLS
// server check (CA, ServerName, Insecure, NextProtos) and the proxy
// Proxy picks for Host. Configs with equal fingerprints connect alike
// as the same user, so one client may serve both; two credentials for
// one server differ.
//
// Left out, as they pace or encode requests rather than say where they
// go and as whom: QPS, Burst, RateLimiter, UserAgent, Timeout,
// ContentConfig, warning handlers. Transport, WrapTransport, Dial and
// GetCert are funcs and are left out too: configs that differ only
// there share a fingerprint. Fields are taken as given, so two
// spellings of one server (":443" or not) differ. The hash exposes no
// secret. Fingerprint(nil) is "".
func Fingerprint(cfg *rest.Config) string {
	if cfg == nil {
		return ""
	}
	b, err := json.Marshal(connection{
		Version:            1,
		Host:               cfg.Host,
		APIPath:            cfg.APIPath,
		DisableCompression: cfg.DisableCompression,
		Username:           cfg.Username,
		Password:           cfg.Password,
		BearerToken:        cfg.BearerToken,
		BearerTokenFile:    cfg.BearerTokenFile,
		Impersonate:        cfg.Impersonate,
		AuthProvider:       cfg.AuthProvider,
		Exec:               cfg.ExecProvider,
		ExecConfig:         execConfig(cfg.ExecProvider),
		TLS:                cfg.TLSClientConfig,
		Proxy:              proxyFor(cfg),
	})
	if err != nil {
		// Not expected (execConfig never fails); a config of its own
		// then, never one shared by mistake.
		b = fmt.Appendf(nil, "unencodable %p", cfg)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// connection is what Fingerprint hashes, as JSON (map keys sorted).
type connection struct {
	Version            int
	Host, APIPath      string
	DisableCompression bool
	Username           string
	Password           string
	BearerToken        string
	BearerTokenFile    string
	Impersonate        rest.ImpersonationConfig
	AuthProvider       *clientcmdapi.AuthProviderConfig
	Exec               *clientcmdapi.ExecConfig // Config is json:"-": see ExecConfig
	ExecConfig         json.RawMessage
	TLS                rest.TLSClientConfig
	Proxy              string
}

// execConfig is an exec plugin's per-cluster config as JSON, or null.
func execConfig(e *clientcmdapi.ExecConfig) json.RawMessage {
	if e == nil || e.Config == nil {
		return nil
	}
	if b, err := json.Marshal(e.Config); err == nil {
		return b
	}
	b, _ := json.Marshal(fmt.Sprintf("%T %+v", e.Config, e.Config)) // e.g. YAML in a runtime.Unknown
	return b
}

// proxyFor is the proxy cfg.Proxy picks for a request to cfg.Host, or
// "" for none (http.ProxyURL, as clientcmd sets it, always picks its URL).
func proxyFor(cfg *rest.Config) string {
	if cfg.Proxy == nil {
		return ""
	}
	host, err := url.Parse(cfg.Host)
	if err != nil {
		return "unparsable host"
	}
	u, err := cfg.Proxy(&http.Request{URL: host, Header: http.Header{}})
	switch {
	case err != nil:
		return "error: " + err.Error()
	case u == nil:
		return ""
	}
	return u.String()
}

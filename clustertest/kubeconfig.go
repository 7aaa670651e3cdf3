package clustertest

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// clientQPS and clientBurst keep client-go's rate limiter out of the way
// of tests that create many objects.
const (
	clientQPS   = 500
	clientBurst = 1000
)

// certConfig is a rest.Config that authenticates with a client
// certificate.
func certConfig(host string, caPEM []byte, kp keyPair) *rest.Config {
	return &rest.Config{
		Host:            host,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: kp.certPEM, KeyData: kp.keyPEM},
		QPS:             clientQPS,
		Burst:           clientBurst,
	}
}

// tokenConfig is a rest.Config that authenticates with a bearer token.
func tokenConfig(host string, caPEM []byte, token string) *rest.Config {
	return &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		QPS:             clientQPS,
		Burst:           clientBurst,
	}
}

// writeKubeconfig writes a kubeconfig file with one context for conf,
// which carries its credentials inline.
func writeKubeconfig(path, name string, conf *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = &clientcmdapi.Cluster{Server: conf.Host, CertificateAuthorityData: conf.CAData}
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{
		ClientCertificateData: conf.CertData,
		ClientKeyData:         conf.KeyData,
		Token:                 conf.BearerToken,
	}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

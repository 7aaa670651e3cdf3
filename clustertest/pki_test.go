package clustertest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"testing"
)

func parseCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestServingCertificateVerifiesForLoopback(t *testing.T) {
	ca, err := newCertAuthority()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.serving("kube-apiserver", "127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(kp.certPEM, kp.keyPEM); err != nil {
		t.Fatalf("key pair does not match: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	cert := parseCert(t, kp.certPEM)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("verify for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.1"}); err == nil {
		t.Error("verified for 10.0.0.1, want only loopback names")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a serving certificate verified for client auth")
	}
}

func TestClientCertificateCarriesUserAndGroups(t *testing.T) {
	ca, err := newCertAuthority()
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.client("alice", "team-a", "team-b")
	if err != nil {
		t.Fatal(err)
	}
	cert := parseCert(t, kp.certPEM)
	if cert.Subject.CommonName != "alice" || !slices.Equal(cert.Subject.Organization, []string{"team-a", "team-b"}) {
		t.Errorf("subject = %v, want CN=alice O=team-a,team-b", cert.Subject)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify client certificate: %v", err)
	}
}

func TestSigningKeyPairMatches(t *testing.T) {
	private, public, err := signingKey()
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := pem.Decode(private)
	key, err := x509.ParseECPrivateKey(pb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := pem.Decode(public)
	parsed, err := x509.ParsePKIXPublicKey(pub.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(parsed) {
		t.Error("public key does not match the private key")
	}
}

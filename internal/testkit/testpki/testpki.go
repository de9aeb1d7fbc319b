// Package testpki makes throw-away certificates for tests: a CA, a server
// certificate for 127.0.0.1 and a client certificate, written as PEM files
// into a test's temporary folder. Nothing here is used in production.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is one test CA with a server and a client certificate.
type PKI struct {
	CAFile, ClientCert, ClientKey string
	ServerCert, ServerKey         string // PEM files of Server
	Server                        tls.Certificate
	CAPool                        *x509.CertPool
}

// New writes the files into t.TempDir().
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ivr-pin test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	p := &PKI{CAFile: filepath.Join(dir, "ca.pem"), ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key")}
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)
	p.CAPool = x509.NewCertPool()
	p.CAPool.AddCert(caCert)

	leaf := func(serial int64, server bool) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "ivr-pin test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		if server {
			// Asterisk's TLS client (tcptls.c) matches the URI's host
			// against the common name and DNS names only, never an IP
			// address name: a certificate for an address needs it as its
			// common name too.
			tmpl.Subject.CommonName = "127.0.0.1"
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
			tmpl.DNSNames = []string{"localhost"}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	srvDER, srvKey := leaf(2, true)
	p.Server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	p.ServerCert, p.ServerKey = filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, p.ServerCert, "CERTIFICATE", srvDER)
	sk, _ := x509.MarshalECPrivateKey(srvKey)
	writePEM(t, p.ServerKey, "EC PRIVATE KEY", sk)
	cliDER, cliKey := leaf(3, false)
	writePEM(t, p.ClientCert, "CERTIFICATE", cliDER)
	kb, _ := x509.MarshalECPrivateKey(cliKey)
	writePEM(t, p.ClientKey, "EC PRIVATE KEY", kb)
	return p
}

// RSACertificate makes a self-signed certificate around a fresh RSA key, as
// the card host's "encryption certificate" for ASYNC_ENC, and returns the
// PEM file path and the private key.
func RSACertificate(t testing.TB) (string, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := SelfSignedRSA(k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "encryption-cert.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, k
}

// SelfSignedRSA returns a PEM certificate for k (also used by the console,
// which needs no file).
func SelfSignedRSA(k *rsa.PrivateKey) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "card host encryption (simulated)"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

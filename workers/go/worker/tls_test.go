package worker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/agentworker/agentworker/gen/go/agentworker/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// testPKI issues a CA, a server certificate for 127.0.0.1 and a client
// certificate, and writes them as PEM files.
type testPKI struct {
	dir       string
	pool      *x509.CertPool
	server    tls.Certificate
	caFile    string
	certFile  string
	keyFile   string
	otherFile string // a CA that signed nothing here
}

func issue(t *testing.T, template *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	validity := func(n int64, cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	}
	caTmpl := validity(1, "test CA")
	caTmpl.IsCA, caTmpl.BasicConstraintsValid, caTmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	ca, caKey, caPEM, _ := issue(t, caTmpl, nil, nil)
	srvTmpl := validity(2, "host")
	srvTmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	srvTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	_, _, srvPEM, srvKeyPEM := issue(t, srvTmpl, ca, caKey)
	cliTmpl := validity(3, "worker")
	cliTmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	_, _, cliPEM, cliKeyPEM := issue(t, cliTmpl, ca, caKey)
	_, _, otherPEM, _ := issue(t, validity(4, "other CA"), nil, nil)
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	var err error
	if p.server, err = tls.X509KeyPair(srvPEM, srvKeyPEM); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p.caFile, p.certFile, p.keyFile = write("ca.pem", caPEM), write("client.pem", cliPEM), write("client.key", cliKeyPEM)
	p.otherFile = write("other.pem", otherPEM)
	return p
}

// startTLSHost serves the fake host over TLS, requiring client certificates
// when mutual is set.
func startTLSHost(t *testing.T, p *testPKI, mutual bool) *fakeHost {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if mutual {
		cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, p.pool
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHost{t: t, server: grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg))), addr: lis.Addr().String(), channels: make(chan *hostChannel, 4)}
	pb.RegisterAgentRpcServiceServer(h.server, h)
	go func() { _ = h.server.Serve(lis) }()
	t.Cleanup(h.server.Stop)
	return h
}

func tryStart(t *testing.T, cfg Config) error {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := New(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Register(ctx, "echo", func(id AgentID) (Agent, error) { return &echo{id.Key}, nil }); err != nil {
		t.Fatal(err)
	}
	err = w.Start(ctx)
	if err == nil {
		w.Shutdown()
	}
	return err
}

func TestTLSVerifiesTheHost(t *testing.T) {
	p := newTestPKI(t)
	h := startTLSHost(t, p, false)
	if err := tryStart(t, Config{Address: h.addr, TLSCA: p.caFile}); err != nil {
		t.Fatalf("TLS with the right CA: %v", err)
	}
	if err := tryStart(t, Config{Address: h.addr, TLSCA: p.otherFile}); err == nil {
		t.Fatal("connected to a host whose certificate the CA did not sign")
	}
	if err := tryStart(t, Config{Address: h.addr, TLSCA: p.caFile, TLSServerName: "elsewhere.test"}); err == nil {
		t.Fatal("connected although the server name does not match")
	}
}

func TestMutualTLSPresentsTheClientCertificate(t *testing.T) {
	p := newTestPKI(t)
	h := startTLSHost(t, p, true)
	if err := tryStart(t, Config{Address: h.addr, TLSCA: p.caFile}); err == nil {
		t.Fatal("connected to a mutual-TLS host without a client certificate")
	}
	if err := tryStart(t, Config{Address: h.addr, TLSCA: p.caFile, TLSCert: p.certFile, TLSKey: p.keyFile}); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
}

func TestBearerTokenIsSentOnEveryCall(t *testing.T) {
	var seen []string
	check := func(ctx context.Context) {
		md, _ := metadataFrom(ctx)
		seen = append(seen, md...)
	}
	h := startFakeHost(t)
	h.onCall = check
	if err := tryStart(t, Config{Address: h.addr, Token: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(seen) < 3 {
		t.Fatalf("authorization seen on %d calls", len(seen))
	}
	for _, v := range seen {
		if v != "Bearer s3cret" {
			t.Fatalf("authorization = %q", v)
		}
	}
}

package bus_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
)

// authority is a certificate authority the test makes.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newAuthority(t *testing.T, name string) *authority {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	a := &authority{cert: cert, key: key, file: filepath.Join(t.TempDir(), name+".pem")}
	writePEM(t, a.file, "CERTIFICATE", der)
	return a
}

// serverTLS is a certificate a signs for 127.0.0.1, as a tls.Config.
func (a *authority) serverTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"nats.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// works connects with cfg and provisions a stream: TLS and the
// credentials carried the whole way.
func works(t *testing.T, cfg bus.Config) {
	t.Helper()
	conn, err := bus.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ProvisionStream(context.Background(), "visits"); err != nil {
		t.Fatalf("provision a stream: %v", err)
	}
}

// refused connects with cfg, which must fail, saying want and never
// showing secret.
func refused(t *testing.T, cfg bus.Config, want, secret string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := bus.Connect(ctx, cfg)
	if err == nil {
		conn.Close()
		t.Fatalf("connected; want a refusal saying %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q does not say %q", err, want)
	}
	if secret != "" && strings.Contains(err.Error(), secret) {
		t.Errorf("the refusal shows the secret: %v", err)
	}
}

// TLS with a certificate the test makes: the right CA connects (by IP and
// by a server name), a wrong one is refused with the reason.
func TestTLS(t *testing.T) {
	ca, other := newAuthority(t, "switchyard-test-ca"), newAuthority(t, "someone-else")
	srv := natstest.StartWith(t, func(o *server.Options) { o.TLSConfig, o.TLS = ca.serverTLS(t), true })
	works(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: ca.file}})
	works(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: ca.file, ServerName: "nats.test"}})
	refused(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: other.file}}, "certificate signed by unknown authority", "")
	refused(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: ca.file, ServerName: "elsewhere.test"}}, "elsewhere.test", "")
}

// An NKey, a token, a user and password: each connects when right, and is
// refused when wrong without the refusal showing the secret.
func TestCredentials(t *testing.T) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	nk := natstest.StartWith(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	works(t, bus.Config{URL: nk.URL, Security: bus.Security{NKeySeedFile: seedFile}})
	refused(t, bus.Config{URL: nk.URL}, "Authorization Violation", "")

	tok := natstest.StartWith(t, func(o *server.Options) { o.Authorization = "s3cret-token" })
	works(t, bus.Config{URL: tok.URL, Security: bus.Security{Token: "s3cret-token"}})
	refused(t, bus.Config{URL: tok.URL, Security: bus.Security{Token: "wr0ng-token"}}, "Authorization Violation", "wr0ng-token")

	up := natstest.StartWith(t, func(o *server.Options) { o.Users = []*server.User{{Username: "relay", Password: "pa55word"}} })
	works(t, bus.Config{URL: up.URL, Security: bus.Security{User: "relay", Password: "pa55word"}})
	refused(t, bus.Config{URL: up.URL, Security: bus.Security{User: "relay", Password: "n0tit"}}, "Authorization Violation", "n0tit")
}

// Bad security settings are reported at once, each naming its field.
func TestSecurityConfigErrors(t *testing.T) {
	err := bus.Config{URL: "nats://127.0.0.1:1", Security: bus.Security{
		CAFile: "/nowhere/ca.pem", CertFile: "/nowhere/cert.pem", Token: "t", User: "u", Password: "p",
	}}.Validate()
	var ce *bus.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Validate = %v, want ConfigErrors", err)
	}
	for _, want := range []string{"Security.CAFile", "/nowhere/ca.pem", "Security.CertFile", "needs both CertFile and KeyFile", "Token and User: give one way"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "=p") || strings.Contains(err.Error(), `"p"`) {
		t.Errorf("Validate shows the password: %v", err)
	}
	if err := (bus.Config{Security: bus.Security{Token: "t"}}).Validate(); err == nil || !strings.Contains(err.Error(), "external NATS") {
		t.Errorf("security for the embedded server: %v", err)
	}
}

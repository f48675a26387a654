package bus_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/internal/natstest"
	"github.com/switchyard-go/switchyard/internal/testcert"
)

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
	ca, other := testcert.NewAuthority(t, "switchyard-test-ca"), testcert.NewAuthority(t, "someone-else")
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.TLSConfig, o.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "nats.test")}, MinVersion: tls.VersionTLS12}, true
	})
	works(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: ca.File}})
	works(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: ca.File, ServerName: "nats.test"}})
	refused(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: other.File}}, "certificate signed by unknown authority", "")
	refused(t, bus.Config{URL: srv.URL, Security: bus.Security{CAFile: ca.File, ServerName: "elsewhere.test"}}, "elsewhere.test", "")
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

// A credentials file (a user JWT and its seed) of an account the test's
// operator signed: it connects and uses JetStream, and the permissions the
// JWT carries are the ones a part's start checks against.
func TestCredentialsFile(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	account := func(jetStream bool) (nkeys.KeyPair, string, string) {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		if jetStream {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := ac.Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		return kp, pub, token
	}
	_, sysPub, sysJWT := account(false)
	acc, accPub, accJWT := account(true)
	oc := jwt.NewOperatorClaims(opPub)
	oc.SystemAccount = sysPub
	if _, err := oc.Encode(op); err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	for pub, token := range map[string]string{sysPub: sysJWT, accPub: accJWT} {
		if err := resolver.Store(pub, token); err != nil {
			t.Fatal(err)
		}
	}
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.TrustedOperators, o.SystemAccount, o.AccountResolver = []*jwt.OperatorClaims{oc}, sysPub, resolver
	})
	creds := func(name string, allow ...string) string {
		kp, _ := nkeys.CreateUser()
		pub, _ := kp.PublicKey()
		uc := jwt.NewUserClaims(pub)
		uc.Name = name
		for _, s := range allow {
			uc.Pub.Allow.Add(s)
		}
		token, err := uc.Encode(acc)
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		file, err := jwt.FormatUserConfig(token, seed)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".creds")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	works(t, bus.Config{URL: srv.URL, Security: bus.Security{CredsFile: creds("app")}})
	refused(t, bus.Config{URL: srv.URL}, "Authorization Violation", "")

	relay := connect(t, srv.URL, bus.Config{Security: bus.Security{CredsFile: creds("relay", "$SYS.REQ.USER.INFO", "sw.visits.>")}})
	err := relay.Check(context.Background(), "relay of visits/default", bus.RelayPermissions("visits", "default"))
	var perr *bus.PermissionError
	if !errors.As(err, &perr) || perr.User != "relay" || perr.Subject != "$JS.API.STREAM.CREATE.SW_VISITS" {
		t.Fatalf("Check under the JWT's permissions: %v, want the stream's creation refused", err)
	}
}

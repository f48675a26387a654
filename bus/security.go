package bus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// Security is how a Conn proves who it is to an external NATS and checks
// the server: TLS, and one of a credentials file (JWT and NKey seed), an
// NKey seed file, a token, or a user and password. The zero value: plain
// TCP, no credentials. Secrets are read from files or given by the
// program (from the environment: see cli); none is ever logged or put in
// an error.
type Security struct {
	// TLS: CAFile is the PEM of the certificate authorities to trust
	// (default: the system's); CertFile and KeyFile a client certificate
	// for servers that verify clients; ServerName the name to verify the
	// server's certificate against (default: the URL's host). Setting any
	// of them, or a tls:// URL, makes the connection TLS.
	CAFile, CertFile, KeyFile, ServerName string

	// CredsFile is a NATS credentials file (a user JWT and its NKey seed,
	// as nsc writes them).
	CredsFile string
	// NKeySeedFile holds an NKey user seed (SU...).
	NKeySeedFile string
	// Token authenticates with a token.
	Token string
	// User and Password authenticate with a user and password.
	User, Password string

	// InboxPrefix is the prefix of the subjects replies come back on
	// (default _INBOX). Give each NATS user its own, and allow it to
	// subscribe to that alone (ConnPermissions): no user then sees
	// another's replies.
	InboxPrefix string
}

// tlsWanted says whether any TLS setting is given.
func (s Security) tlsWanted() bool {
	return s.CAFile != "" || s.CertFile != "" || s.KeyFile != "" || s.ServerName != ""
}

// validate reports every problem of s: files that cannot be read, a
// certificate without its key, more than one way to authenticate.
func (s Security) validate() error {
	var errs []error
	bad := func(field string, err error) { errs = append(errs, &ConfigError{Path: "Security." + field, Err: err}) }
	for field, path := range map[string]string{"CAFile": s.CAFile, "CertFile": s.CertFile, "KeyFile": s.KeyFile, "CredsFile": s.CredsFile, "NKeySeedFile": s.NKeySeedFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			bad(field, fmt.Errorf("%s: %w", path, errors.Unwrap(err)))
		}
	}
	if s.InboxPrefix != "" && (strings.ContainsAny(s.InboxPrefix, "*> \t") || strings.HasSuffix(s.InboxPrefix, ".") || strings.HasPrefix(s.InboxPrefix, ".")) {
		bad("InboxPrefix", fmt.Errorf("%q is not a subject prefix: no wildcards, spaces or dot at either end", s.InboxPrefix))
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		bad("CertFile", errors.New("a client certificate needs both CertFile and KeyFile"))
	}
	var ways []string
	for name, set := range map[string]bool{"CredsFile": s.CredsFile != "", "NKeySeedFile": s.NKeySeedFile != "", "Token": s.Token != "", "User": s.User != "" || s.Password != ""} {
		if set {
			ways = append(ways, name)
		}
	}
	if len(ways) > 1 {
		slices.Sort(ways)
		bad("", fmt.Errorf("%s: give one way to authenticate", strings.Join(ways, " and ")))
	}
	if s.Password != "" && s.User == "" {
		bad("User", errors.New("a password needs its user"))
	}
	return errors.Join(errs...)
}

// options are the nats.go options of s.
func (s Security) options() ([]nats.Option, error) {
	var opts []nats.Option
	if s.tlsWanted() {
		cfg, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(cfg))
	}
	if s.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(s.InboxPrefix))
	}
	switch {
	case s.CredsFile != "":
		opts = append(opts, nats.UserCredentials(s.CredsFile))
	case s.NKeySeedFile != "":
		opt, err := nats.NkeyOptionFromSeed(s.NKeySeedFile)
		if err != nil {
			return nil, &ConfigError{Path: "Security.NKeySeedFile", Err: fmt.Errorf("%s: not an NKey user seed", s.NKeySeedFile)}
		}
		opts = append(opts, opt)
	case s.Token != "":
		opts = append(opts, nats.Token(s.Token))
	case s.User != "":
		opts = append(opts, nats.UserInfo(s.User, s.Password))
	}
	return opts, nil
}

func (s Security) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, &ConfigError{Path: "Security.CAFile", Err: err}
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Path: "Security.CAFile", Err: fmt.Errorf("%s holds no PEM certificate", s.CAFile)}
		}
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, &ConfigError{Path: "Security.CertFile", Err: fmt.Errorf("client certificate %s with key %s: %w", s.CertFile, s.KeyFile, err)}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

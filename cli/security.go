package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/switchyard-go/switchyard/bus"
)

// security reads the NATS connection's TLS and credentials from the
// environment. A secret comes from its variable, or from the file its
// _FILE variable names (as container secrets are mounted); it is never
// printed.
//
//	SWITCHYARD_NATS_CA, _CERT, _KEY, _SERVER_NAME   TLS (files; the server name to verify)
//	SWITCHYARD_NATS_CREDS                         a credentials file (JWT and NKey seed)
//	SWITCHYARD_NATS_NKEY_SEED                     a file holding an NKey user seed
//	SWITCHYARD_NATS_TOKEN[_FILE]                  a token
//	SWITCHYARD_NATS_USER, SWITCHYARD_NATS_PASSWORD[_FILE]
//	SWITCHYARD_NATS_INBOX_PREFIX                  the user's own reply subjects (default _INBOX)
func (c *call) security() (bus.Security, error) {
	s := bus.Security{
		CAFile: c.env("SWITCHYARD_NATS_CA", ""), CertFile: c.env("SWITCHYARD_NATS_CERT", ""),
		KeyFile: c.env("SWITCHYARD_NATS_KEY", ""), ServerName: c.env("SWITCHYARD_NATS_SERVER_NAME", ""),
		CredsFile: c.env("SWITCHYARD_NATS_CREDS", ""), NKeySeedFile: c.env("SWITCHYARD_NATS_NKEY_SEED", ""),
		User: c.env("SWITCHYARD_NATS_USER", ""), InboxPrefix: c.env("SWITCHYARD_NATS_INBOX_PREFIX", ""),
	}
	var err error
	if s.Token, err = c.secret("SWITCHYARD_NATS_TOKEN"); err != nil {
		return s, err
	}
	s.Password, err = c.secret("SWITCHYARD_NATS_PASSWORD")
	return s, err
}

// secret is the value of the variable name, or the content of the file
// name_FILE names; both set is an error.
func (c *call) secret(name string) (string, error) {
	v, file := c.env(name, ""), c.env(name+"_FILE", "")
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("%s and %s_FILE are both set: give one", name, name)
	case file == "":
		return v, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

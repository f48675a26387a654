package cli

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/switchyard-go/switchyard/browser"
)

// The -browser settings.
const (
	browseLocal = "local" // loopback clients only
	browseAll   = "all"
	browseOff   = "off"
)

func checkBrowse(v string) error {
	switch v {
	case browseLocal, browseAll, browseOff:
		return nil
	}
	return usage(fmt.Errorf("-browser %q: want %s, %s or %s", v, browseLocal, browseAll, browseOff))
}

// mountBrowser serves the event browser at /browse/ on mux, as mode says;
// nil when it is off.
func mountBrowser(mux *http.ServeMux, mode string, cfg browser.Config) (*browser.Browser, error) {
	if mode == browseOff {
		return nil, nil
	}
	b, err := browser.New(cfg)
	if err != nil {
		return nil, err
	}
	var h http.Handler = http.StripPrefix("/browse", b)
	if mode == browseLocal {
		h = localOnly(h)
	}
	mux.Handle("/browse/", h)
	return b, nil
}

// localOnly answers 403 to a client not on this machine, and to a request
// that does not name this machine (a page of another site whose name was
// made to resolve to 127.0.0.1: DNS rebinding).
func localOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "the event browser answers clients on this machine only (run -browser all to open it wider)", http.StatusForbidden)
			return
		}
		if !localName(r.Host) {
			http.Error(w, "the event browser answers requests to localhost, 127.0.0.1 or [::1] only (run -browser all to open it wider)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// localName says whether a Host header names this machine.
func localName(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}

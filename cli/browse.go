package cli

import (
	"fmt"
	"net"
	"net/http"

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

// mountBrowser serves the event browser at /browse/ on mux, as mode says.
func mountBrowser(mux *http.ServeMux, mode string, cfg browser.Config) error {
	if mode == browseOff {
		return nil
	}
	b, err := browser.New(cfg)
	if err != nil {
		return err
	}
	var h http.Handler = http.StripPrefix("/browse", b)
	if mode == browseLocal {
		h = loopbackOnly(h)
	}
	mux.Handle("/browse/", h)
	return nil
}

// loopbackOnly answers 403 to clients not on this machine.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "the event browser answers clients on this machine only (run -browser all to open it wider)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// DefaultWriteWindow is how long after a client's write its reads still
// go to the primary: long enough for a replica to catch up.
const DefaultWriteWindow = 2 * time.Second

// LastWriteCookie holds, per client, when it last wrote (Unix
// milliseconds): what ReadingRole's window is measured from.
const LastWriteCookie = "sw_last_write"

// ReadingRole is a net/http middleware that picks each request's store
// role (store.WithRole). A safe request (GET, HEAD, OPTIONS, TRACE) reads
// in the Reading role — from the stores' replicas — unless the same
// client wrote within window (DefaultWriteWindow when 0), so that it
// reads its own writes from the primary. Any other request is in the
// Writing role, and its response, when its handler answers, starts the
// client's window again (a write that failed too: harmless). Clients are
// told apart by the LastWriteCookie cookie the middleware sets, as Rails'
// session resolver tells them by their session: one that drops it reads
// the replica after its writes.
func ReadingRole(window time.Duration) func(http.Handler) http.Handler {
	if window <= 0 {
		window = DefaultWriteWindow
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if safe(r.Method) {
				role := store.Reading
				if wroteWithin(r, time.Now(), window) {
					role = store.Writing
				}
				next.ServeHTTP(w, r.WithContext(store.WithRole(r.Context(), role)))
				return
			}
			sw := &stamping{ResponseWriter: w, r: r, window: window}
			next.ServeHTTP(sw, r.WithContext(store.WithRole(r.Context(), store.Writing)))
			sw.stamp() // a handler that wrote nothing: the 200 net/http sends
		})
	}
}

func safe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// stamping sets the client's last write time as the response's headers
// go out: when the write is done, not when it began.
type stamping struct {
	http.ResponseWriter
	r       *http.Request
	window  time.Duration
	stamped bool
}

func (s *stamping) stamp() {
	if s.stamped {
		return
	}
	s.stamped = true
	http.SetCookie(s.ResponseWriter, &http.Cookie{Name: LastWriteCookie, Value: strconv.FormatInt(time.Now().UnixMilli(), 10),
		Path: "/", HttpOnly: true, Secure: s.r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: int(s.window/time.Second) + 1})
}

func (s *stamping) WriteHeader(code int) { s.stamp(); s.ResponseWriter.WriteHeader(code) }

func (s *stamping) Write(b []byte) (int, error) { s.stamp(); return s.ResponseWriter.Write(b) }

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *stamping) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// wroteWithin says whether r's client wrote in the window before now. A
// time ahead of now (another server's clock) counts, up to a window ahead.
func wroteWithin(r *http.Request, now time.Time, window time.Duration) bool {
	c, err := r.Cookie(LastWriteCookie)
	if err != nil {
		return false
	}
	ms, err := strconv.ParseInt(c.Value, 10, 64)
	if err != nil {
		return false
	}
	since := now.Sub(time.UnixMilli(ms))
	return since > -window && since < window
}

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
// role (store.WithRole): a GET or HEAD reads in the Reading role — from
// the stores' replicas — unless the same client wrote within window
// (DefaultWriteWindow when 0), so that it reads its own writes from the
// primary; every other method is in the Writing role and starts the
// client's window again. Clients are told apart by the LastWriteCookie
// cookie the middleware sets: one that drops it reads the replica after
// its writes, as one without a session does in Rails.
func ReadingRole(window time.Duration) func(http.Handler) http.Handler {
	if window <= 0 {
		window = DefaultWriteWindow
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			now := time.Now()
			role := store.Writing
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				if !wroteWithin(r, now, window) {
					role = store.Reading
				}
			} else {
				http.SetCookie(w, &http.Cookie{Name: LastWriteCookie, Value: strconv.FormatInt(now.UnixMilli(), 10),
					Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: int(window/time.Second) + 1})
			}
			next.ServeHTTP(w, r.WithContext(store.WithRole(r.Context(), role)))
		})
	}
}

// wroteWithin says whether r's client wrote in the window before now.
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
	return since >= -time.Second && since < window // a clock a second ahead is still this client's write
}

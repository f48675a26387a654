package cli

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLoopbackOnly(t *testing.T) {
	h := loopbackOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for addr, want := range map[string]int{
		"127.0.0.1:5000": http.StatusTeapot,
		"[::1]:5000":     http.StatusTeapot,
		"10.0.0.7:5000":  http.StatusForbidden,
		"garbage":        http.StatusForbidden,
	} {
		r := httptest.NewRequest(http.MethodGet, "/browse/", nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("from %s: %d, want %d", addr, w.Code, want)
		}
	}
}

package cli

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestLocalOnly(t *testing.T) {
	h := localOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, tc := range []struct {
		from, host string
		want       int
	}{
		{"127.0.0.1:5000", "127.0.0.1:8080", http.StatusTeapot},
		{"[::1]:5000", "[::1]:8080", http.StatusTeapot},
		{"127.0.0.1:5000", "localhost:8080", http.StatusTeapot},
		{"127.0.0.1:5000", "LOCALHOST", http.StatusTeapot},
		{"10.0.0.7:5000", "127.0.0.1:8080", http.StatusForbidden},
		{"garbage", "127.0.0.1:8080", http.StatusForbidden},
		{"127.0.0.1:5000", "evil.example:8080", http.StatusForbidden}, // DNS rebinding
		{"127.0.0.1:5000", "10.0.0.7:8080", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodGet, "/browse/", nil)
		r.RemoteAddr, r.Host = tc.from, tc.host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("from %s to %s: %d, want %d", tc.from, tc.host, w.Code, tc.want)
		}
	}
}

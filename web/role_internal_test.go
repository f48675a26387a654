package web

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/store"
)

// The window starts when the write answers, not when it began; OPTIONS
// reads; a cookie from a server whose clock runs ahead still counts.
func TestReadingRoleTiming(t *testing.T) {
	var roles []store.Role
	h := ReadingRole(300 * time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		roles = append(roles, store.RoleOf(r.Context()))
		if r.Method == http.MethodPost {
			time.Sleep(400 * time.Millisecond) // a slow write
		}
	}))
	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/", nil))
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range post.Result().Cookies() {
		get.AddCookie(c)
	}
	h.ServeHTTP(httptest.NewRecorder(), get)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodOptions, "/", nil))
	ahead := httptest.NewRequest(http.MethodGet, "/", nil)
	ahead.AddCookie(&http.Cookie{Name: LastWriteCookie, Value: "9999999999999"})
	h.ServeHTTP(httptest.NewRecorder(), ahead)
	skewed := httptest.NewRequest(http.MethodGet, "/", nil)
	skewed.AddCookie(&http.Cookie{Name: LastWriteCookie, Value: strconv.FormatInt(time.Now().Add(200*time.Millisecond).UnixMilli(), 10)})
	h.ServeHTTP(httptest.NewRecorder(), skewed)
	want := []store.Role{store.Writing, store.Writing, store.Reading, store.Reading, store.Writing}
	if len(roles) != len(want) {
		t.Fatalf("roles %v, want %v", roles, want)
	}
	for i := range want {
		if roles[i] != want[i] {
			t.Errorf("request %d: %v, want %v (all: %v)", i, roles[i], want[i], roles)
		}
	}
}

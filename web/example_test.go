package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/web"
)

// A request for acme.localhost appends in acme's shard, with the tenant,
// the request id and the client's address in the event's metadata.
func ExampleRequests() {
	dir, _ := os.MkdirTemp("", "web-example")
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: "tenant-a", Dir: dir})
	if err != nil {
		panic(err)
	}
	reg := sharding.NewRegistry()
	defer reg.Close()
	_ = reg.Add(st)
	_ = reg.SetTenant("acme", "tenant-a")

	mw, _ := web.Requests(reg, web.Config{})
	book := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		visits, _ := reg.For(r.Context(), "visits")
		ev, _ := store.NewEvent("VisitBooked", map[string]int{"visit": 42})
		stored, _ := visits.Append(r.Context(), "Visit-42", store.NoStream, ev)
		md := stored[0].Metadata
		fmt.Println(md["shard"], md["tenant"], md["request_id"], md["remote_ip"])
	})
	req := httptest.NewRequest("POST", "/visits", nil)
	req.Host, req.RemoteAddr = "acme.localhost:8000", "192.0.2.7:5555"
	req.Header.Set("X-Request-Id", "req-1")
	mw(book).ServeHTTP(httptest.NewRecorder(), req)

	req.Host = "initech.localhost:8000"
	rec := httptest.NewRecorder()
	mw(book).ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// tenant-a acme req-1 192.0.2.7
	// 404
}

// A client's GET reads in the reading role — from the replicas — unless
// it wrote within the window; its POST writes.
func ExampleReadingRole() {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Method, store.RoleOf(r.Context()))
	})
	h := web.ReadingRole(0)(mux)

	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	post := httptest.NewRecorder()
	h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/", nil))
	get := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range post.Result().Cookies() {
		get.AddCookie(c) // the same client, within the window
	}
	h.ServeHTTP(httptest.NewRecorder(), get)
	// Output:
	// GET reading
	// POST writing
	// GET writing
}

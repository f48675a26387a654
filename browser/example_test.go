package browser_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/switchyard-go/switchyard/browser"
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
)

// A browser over one SQLite store and an embedded NATS, mounted at
// /browse/, showing a stream.
func Example() {
	dir, _ := os.MkdirTemp("", "browser-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Context: "visits", Shard: "default", Dir: dir})
	if err != nil {
		panic(err)
	}
	reg := sharding.NewRegistry()
	reg.Add(st)
	defer reg.Close()
	conn, err := bus.Connect(ctx, bus.Config{Embedded: bus.Embedded{Dir: filepath.Join(dir, "nats")}})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ev, _ := store.NewEvent("VisitBooked", map[string]string{"visit": "42"})
	st.Append(ctx, "Visit-42", store.NoStream, ev)

	b, err := browser.New(browser.Config{Registry: reg, Conn: conn})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/browse/", http.StripPrefix("/browse", b))

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/browse/stores/visits/default/streams/Visit-42", nil))
	fmt.Println(w.Code, strings.Contains(w.Body.String(), "VisitBooked"))
	// Output: 200 true
}

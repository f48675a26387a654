package web_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-go/switchyard/internal/pgtest"
	"github.com/switchyard-go/switchyard/internal/testrun"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/web"
)

// Read-your-own-writes against a real streaming replica, paused so that
// it cannot see the write: a GET within the window after the client's
// POST reads the primary and sees it; after the window, and for another
// client at once, a GET reads the replica.
func TestReadingRoleWindow(t *testing.T) {
	primary, replica := pgtest.Replicated(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, primary.URL("postgres"), postgres.Config{Context: "visits", Shard: "default", ReplicaDSN: replica.ReaderURL("postgres")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testrun.Wait(t, "the replica to have the schema", 20*time.Second, func() bool {
		_, err := st.Read(store.WithRole(ctx, store.Reading), "Visit-1", store.Forward, 0, 1)
		return err == nil
	})
	replica.PauseReplay(t)

	const window = 500 * time.Millisecond
	mux := http.NewServeMux()
	mux.HandleFunc("POST /visits", func(w http.ResponseWriter, r *http.Request) {
		ev, _ := store.NewEvent("VisitBooked", map[string]int{"n": 1})
		if _, err := st.Append(r.Context(), "Visit-1", store.Any, ev); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /visits", func(w http.ResponseWriter, r *http.Request) {
		evs, err := st.Read(r.Context(), "Visit-1", store.Forward, 0, 100)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, strconv.Itoa(len(evs))+" "+store.RoleOf(r.Context()).String())
	})
	srv := httptest.NewServer(web.ReadingRole(window)(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	do := func(c *http.Client, method string) string {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/visits", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", method, resp.StatusCode, b)
		}
		return string(b)
	}

	do(client, http.MethodPost)
	if got := do(client, http.MethodGet); got != "1 writing" {
		t.Errorf("GET within the window after the POST: %q, want the primary's 1 event", got)
	}
	if got := do(&http.Client{}, http.MethodGet); got != "0 reading" {
		t.Errorf("another client's GET: %q, want the paused replica's 0 events", got)
	}
	time.Sleep(window + 100*time.Millisecond)
	if got := do(client, http.MethodGet); got != "0 reading" {
		t.Errorf("GET after the window: %q, want the paused replica's 0 events", got)
	}
	replica.ResumeReplay(t)
	testrun.Wait(t, "the replica to catch up", 20*time.Second, func() bool { return do(client, http.MethodGet) == "1 reading" })
}

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/postgres"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/web"
)

// VisitBooked is what the producer appends for a request.
type VisitBooked struct {
	Visit string `json:"visit"`
	At    string `json:"at"`
}

// VisitLogged is what LogVisitsByIp appends in reaction.
type VisitLogged struct {
	Visit    string `json:"visit"`
	RemoteIP string `json:"remote_ip"`
	Count    int    `json:"count"` // visits from that address so far, in the tenant's shard
}

// producer books a visit: POST /visits appends a VisitBooked to a stream of
// its own in the request's shard and answers with the stream's name.
func producer(reg *sharding.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /visits", func(w http.ResponseWriter, r *http.Request) {
		visits, err := reg.For(r.Context(), "visits") // the tenant's shard, which web.Requests put in ctx
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		stream := "Visit-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		ev, err := store.NewEvent("VisitBooked", VisitBooked{Visit: stream, At: "09:00"})
		if err == nil {
			_, err = visits.Append(r.Context(), stream, store.NoStream, ev)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, stream)
	})
	return mux
}

// bookVisit sends the producer a request for host and returns the stream
// it booked, or "" when the producer did not know the tenant.
func bookVisit(ctx context.Context, addr, host string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/visits", nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	fmt.Printf("POST http://%s/visits: %s", host, resp.Status)
	if id := resp.Header.Get(web.HeaderRequestID); id != "" {
		fmt.Printf(", request %s", id)
	}
	fmt.Println()
	switch resp.StatusCode {
	case http.StatusOK:
		return string(body), nil
	case http.StatusNotFound:
		return "", nil
	}
	return "", fmt.Errorf("multitenant: POST for %s: %s: %s", host, resp.Status, body)
}

// groups are the example's handlers: LogVisitsByIp in group
// visits-by-ip, NotifyVisitLogged in group visit-notify.
func groups(notified chan<- handlers.Message) []*handlers.Group {
	log := &handlers.Group{Name: "visits-by-ip", Context: "visits"}
	handlers.Handle(log, "log-visits-by-ip", "VisitBooked", LogVisitsByIp)
	notify := &handlers.Group{Name: "visit-notify", Context: "visits"}
	handlers.HandleMessage(notify, "notify-visit-logged", "VisitLogged", NotifyVisitLogged(notified))
	return []*handlers.Group{log, notify}
}

// LogVisitsByIp counts the visit in the read model of its shard and
// appends VisitLogged there, in the handler's one transaction: the row,
// the event and the inbox record commit together.
func LogVisitsByIp(ctx context.Context, v VisitBooked, m handlers.Message) error {
	st, _ := handlers.Store(ctx) // the shard's store, in the handler's transaction
	ip := m.Event.Metadata[web.RemoteIP]
	count, err := countVisit(ctx, st, ip)
	if err != nil {
		return err
	}
	ev, err := store.NewEvent("VisitLogged", VisitLogged{Visit: v.Visit, RemoteIP: ip, Count: count})
	if err != nil {
		return err
	}
	return store.AppendDeferred(ctx, st, "VisitLog-"+m.Event.Stream, store.Any, ev) // correlation, causation, shard, request metadata inherited
}

// NotifyVisitLogged hands each VisitLogged to notified; with notified
// nil (deployed, no one waits) it prints the chain's ids instead.
func NotifyVisitLogged(notified chan<- handlers.Message) func(context.Context, handlers.Message) error {
	return func(_ context.Context, m handlers.Message) error {
		if notified == nil {
			md := m.Event.Metadata
			fmt.Printf("visit logged: chain %s, tenant %s, shard %s, request %s from %s\n", md.Get(correlation.CorrelationID),
				md.Get(correlation.Tenant), m.Shard, md[web.RequestID], md[web.RemoteIP])
			return nil
		}
		notified <- m
		return nil
	}
}

// createReadModel creates the visits_by_ip table in a visits store (the
// program's cli.Program.Migrate); other contexts have none.
func createReadModel(ctx context.Context, st store.Store) error {
	if st.Context() != "visits" {
		return nil
	}
	var err error
	switch s := st.(type) {
	case *sqlite.Store:
		_, err = s.DB().ExecContext(ctx, `CREATE TABLE IF NOT EXISTS visits_by_ip (remote_ip TEXT PRIMARY KEY, visits INTEGER NOT NULL)`)
	case *postgres.Store:
		_, err = s.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.Schema()+`.visits_by_ip (remote_ip text PRIMARY KEY, visits integer NOT NULL)`)
	}
	if err != nil {
		return fmt.Errorf("multitenant: read model of shard %s: %w", st.Shard(), err)
	}
	return nil
}

// countVisit counts a visit from ip in the read model of st, in the
// handler's transaction, and returns the count.
func countVisit(ctx context.Context, st store.Store, ip string) (int, error) {
	var n int
	switch s := st.(type) {
	case *sqlite.Store:
		tx, _ := s.Tx(ctx)
		err := tx.QueryRowContext(ctx, `INSERT INTO visits_by_ip (remote_ip, visits) VALUES (?, 1)
			ON CONFLICT (remote_ip) DO UPDATE SET visits = visits + 1 RETURNING visits`, ip).Scan(&n)
		return n, err
	case *postgres.Store:
		tx, _ := s.Tx(ctx)
		err := tx.QueryRow(ctx, `INSERT INTO `+s.Schema()+`.visits_by_ip AS v (remote_ip, visits) VALUES ($1, 1)
			ON CONFLICT (remote_ip) DO UPDATE SET visits = v.visits + 1 RETURNING visits`, ip).Scan(&n)
		return n, err
	}
	return 0, fmt.Errorf("multitenant: no read model on a %T", st)
}

// printChain prints the chain that ends in m: the event that caused it,
// then m, with their ids, shard and request metadata.
func printChain(ctx context.Context, reg *sharding.Registry, m handlers.Message) error {
	visits, err := reg.Store("visits", m.Shard)
	if err != nil {
		return err
	}
	cause, err := visits.Read(ctx, m.Event.Stream[len("VisitLog-"):], store.Forward, 0, 1)
	if err != nil {
		return err
	}
	md := m.Event.Metadata
	fmt.Printf("chain %s (tenant %s, shard %s, request %s from %s)\n", md.Get(correlation.CorrelationID),
		md.Get(correlation.Tenant), m.Shard, md[web.RequestID], md[web.RemoteIP])
	for _, e := range append(cause, m.Event) {
		fmt.Printf("  %-12s %s stream=%s@%d causation=%s data=%s\n", e.Type, e.ID, e.Stream, e.Version,
			or(e.Metadata.Get(correlation.CausationID), "-"), e.Data)
	}
	return nil
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

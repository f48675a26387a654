package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
	"github.com/switchyard-go/switchyard/store/sqlite"
	"github.com/switchyard-go/switchyard/web"
)

// registry holds context visits with shards tenant-a and tenant-b, acme
// on tenant-a.
func registry(t *testing.T) *sharding.Registry {
	t.Helper()
	reg := sharding.NewRegistry()
	dir := t.TempDir()
	for _, sh := range []string{"tenant-a", "tenant-b"} {
		st, err := sqlite.Open(context.Background(), sqlite.Config{Context: "visits", Shard: sh, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Add(st); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.SetTenant("acme", "tenant-a"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// book appends a VisitBooked in the request's shard and answers with it.
func book(t *testing.T, reg *sharding.Registry, got *[]store.Event) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := reg.For(r.Context(), "visits")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		ev, _ := store.NewEvent("VisitBooked", map[string]string{"visit": "42"})
		stored, err := st.Append(r.Context(), "Visit-42", store.Any, ev)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		*got = append(*got, stored...)
	})
}

func TestRequests(t *testing.T) {
	reg := registry(t)
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	mw, err := web.Requests(reg, web.Config{TrustedProxies: trusted})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		host, peer string
		header     map[string]string
		code       int
		tenant     string // of the event appended; "" when none may be
		shard, ip  string
		requestID  string // "" for a new one
	}{
		{name: "tenant from the host", host: "acme.localhost:8000", peer: "192.0.2.7:5555",
			code: 200, tenant: "acme", shard: "tenant-a", ip: "192.0.2.7"},
		{name: "request id kept", host: "ACME.example.com", peer: "192.0.2.7:5555", header: map[string]string{"X-Request-Id": "req-1"},
			code: 200, tenant: "acme", shard: "tenant-a", ip: "192.0.2.7", requestID: "req-1"},
		{name: "forwarded-for from an untrusted peer is ignored", host: "acme.localhost", peer: "192.0.2.7:5555",
			header: map[string]string{"X-Forwarded-For": "203.0.113.9"}, code: 200, tenant: "acme", shard: "tenant-a", ip: "192.0.2.7"},
		{name: "forwarded-for through trusted proxies", host: "acme.localhost", peer: "10.1.2.3:5555",
			header: map[string]string{"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 10.9.9.9"}, code: 200, tenant: "acme", shard: "tenant-a", ip: "203.0.113.9"},
		{name: "unknown tenant", host: "initech.localhost", peer: "192.0.2.7:5555", code: 404},
		{name: "no tenant in the host", host: "localhost:8000", peer: "192.0.2.7:5555", code: 404},
		{name: "an address is no tenant", host: "127.0.0.1:8000", peer: "192.0.2.7:5555", code: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []store.Event
			req := httptest.NewRequest("POST", "/visits", nil)
			req.Host, req.RemoteAddr = tt.host, tt.peer
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			mw(book(t, reg, &got)).ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code != 200 {
				if len(got) != 0 {
					t.Fatalf("%d events appended for a refused request", len(got))
				}
				return
			}
			md := got[0].Metadata
			if md.Get(correlation.Tenant) != tt.tenant || md.Get(correlation.Shard) != tt.shard || md[web.RemoteIP] != tt.ip {
				t.Errorf("metadata %v: want tenant %s, shard %s, remote_ip %s", md, tt.tenant, tt.shard, tt.ip)
			}
			id := md[web.RequestID]
			if tt.requestID != "" && id != tt.requestID || id == "" || rec.Header().Get("X-Request-Id") != id {
				t.Errorf("request_id %q (answered %q), want %q", id, rec.Header().Get("X-Request-Id"), tt.requestID)
			}
		})
	}
}

func TestRequestsRefusesBadConfig(t *testing.T) {
	if _, err := web.Requests(nil, web.Config{}); err == nil {
		t.Error("nil registry accepted")
	}
	if _, err := web.Requests(sharding.NewRegistry(), web.Config{TrustedProxies: []netip.Prefix{{}}}); err == nil {
		t.Error("an invalid prefix accepted")
	}
}

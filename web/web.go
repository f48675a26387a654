package web

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/sharding"
)

// The application metadata keys Requests sets.
const (
	RequestID = "request_id"
	RemoteIP  = "remote_ip"
)

// HeaderRequestID is the request id a client or proxy may send.
const HeaderRequestID = "X-Request-Id"

// Config configures [Requests]. The zero value works.
type Config struct {
	// Tenant names the request's tenant; ok false answers 404. Nil: the
	// Host header's first label.
	Tenant func(r *http.Request) (tenant string, ok bool)
	// TrustedProxies are the addresses whose X-Forwarded-For is believed:
	// the client is the rightmost address of the chain not among them.
	// None: the peer's address is the client's.
	TrustedProxies []netip.Prefix
}

// Requests returns a middleware that resolves each request's tenant to its
// shard through reg and serves it with a context carrying the shard
// (sharding.NewContext), the tenant (correlation.WithTenant) and the
// request id and client address as application metadata
// (correlation.WithValues). A request whose tenant reg does not know is
// answered 404, its handler not called.
func Requests(reg *sharding.Registry, cfg Config) (func(http.Handler) http.Handler, error) {
	if reg == nil {
		return nil, errors.New("web: Requests: nil registry")
	}
	for i, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, errors.New("web: Config.TrustedProxies[" + strconv.Itoa(i) + "] is not a valid prefix")
		}
	}
	tenantOf := cfg.Tenant
	if tenantOf == nil {
		tenantOf = HostTenant
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tenant, ok := tenantOf(r)
			if !ok {
				http.Error(w, "no tenant in this request", http.StatusNotFound)
				return
			}
			shard, err := reg.ShardOf(tenant)
			if err != nil {
				http.Error(w, "unknown tenant", http.StatusNotFound)
				return
			}
			id := requestID(r)
			w.Header().Set(HeaderRequestID, id)
			ctx := sharding.NewContext(r.Context(), shard)
			ctx = correlation.WithTenant(ctx, tenant)
			ctx = correlation.WithValues(ctx, map[string]string{RequestID: id, RemoteIP: clientIP(r, cfg.TrustedProxies)})
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}, nil
}

// HostTenant names the tenant by the Host header's first label, lowercase:
// acme.localhost:8000 is acme. A bare host (localhost, an IP address) names
// none.
func HostTenant(r *http.Request) (string, bool) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "", false
	}
	label, rest, found := strings.Cut(host, ".")
	if !found || label == "" || rest == "" {
		return "", false
	}
	return strings.ToLower(label), true
}

// requestID is the request's X-Request-Id when it is a sensible one (1 to
// 128 printable ASCII bytes), or a new UUIDv7.
func requestID(r *http.Request) string {
	if id := r.Header.Get(HeaderRequestID); id != "" && len(id) <= 128 && printable(id) {
		return id
	}
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// clientIP is the client's address: the peer's, or, when the peer is a
// trusted proxy, the rightmost address of X-Forwarded-For that is not one.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer := addrOf(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: believe no further
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
		peer = a
	}
	return peer.String()
}

func addrOf(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(remote)
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Package web carries what an HTTP request says into the context that
// events are appended with: the tenant, resolved to its shard, a request
// id and the client's address. Every event appended while serving the
// request is stored in the tenant's shard and carries them (tenant,
// request_id, remote_ip).
//
// Start with [Requests], a net/http middleware:
//
//	mw, err := web.Requests(reg, web.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
//	http.ListenAndServe(":8000", mw(mux))
//
//	// in a handler:
//	st, err := reg.For(r.Context(), "visits") // the tenant's shard
//	st.Append(r.Context(), "Visit-42", store.NoStream, ev)
//
// The tenant comes from the Host header's first label (acme.localhost,
// acme.example.com: acme) unless Config.Tenant says otherwise. A request
// whose tenant has no shard is answered 404 and its handler never runs, so
// nothing is written. X-Forwarded-For is believed only from the proxies
// Config.TrustedProxies lists.
//
// ReadingRole is a second middleware: it puts each request in a store
// role (store.WithRole), so that GET and HEAD read the stores' replicas
// unless the client wrote within a window (2 s by default), as Rails'
// database selector does:
//
//	http.ListenAndServe(":8000", web.ReadingRole(0)(mw(mux)))
//
// The middlewares are safe for concurrent use.
package web

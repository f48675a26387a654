// Package browser is Switchyard's event browser: an http.Handler that
// shows what every store of a registry holds and what the deployment is
// doing with it, across contexts and shards.
//
// Start with New, and mount the Browser under a path of its own:
//
//	b, err := browser.New(browser.Config{Registry: reg, Conn: conn})
//	mux.Handle("/browse/", http.StripPrefix("/browse", b))
//
// cmd/consumer and every cli.Program serve it at /browse/ on their -http
// address (see package cli), to clients on the same machine by default.
//
// # Pages
//
//   - Overview: contexts × shards with their relay leader, checkpoint,
//     unpublished events and event count; consumer groups with their
//     partitions, which replica handles each, pending, parked and
//     dead-lettered counts (package status).
//   - A store's streams, by name prefix, PageSize at a time; a stream's
//     events both ways from any version.
//   - An event: its data pretty-printed, all its metadata, the event that
//     caused it and the events it caused, wherever they are stored.
//   - A correlation chain: every event with that correlation_id in every
//     store of every context and shard, queried in parallel, drawn as a
//     causation tree with context and shard badges and as a timeline.
//   - Dead letters per context (package bus/deadletter): reason, attempts,
//     what is parked behind each; replay and discard when Config.Writes.
//   - A live tail of a context, as server-sent events.
//
// The stores are read through store.Catalog, which both backends
// implement: streams are listed one index probe each and correlation
// chains come from an index, so pages stay fast on stores of millions of
// events (BenchmarkPages).
//
// # Safety
//
// The browser is read-only unless Config.Writes. A write is a POST that
// must come from the browser's own pages (http.CrossOriginProtection) and
// carry the client's token, which a SameSite cookie holds and the form
// repeats: it holds across replicas behind one address. The browser has
// no login of its own: served beyond this machine with writes enabled, it
// belongs behind the application's authentication.
//
// Event data and metadata are escaped by html/template, and a
// Content-Security-Policy forbids inline scripts, so an event whose data
// holds markup shows it as text. Pages never show a DSN: every error text
// shown has URL credentials and password= settings taken out.
//
// A bad id, an unknown store or context, and a page out of range (a
// version past a stream's end, a stream or dead letter after the last)
// are 404 pages that say why; a store or NATS out of reach is a 503 page.
// Close ends the live tails, which an http.Server's Shutdown would wait
// for forever (cli registers it with Server.RegisterOnShutdown).
//
// A Browser is safe for concurrent use.
package browser

// Package correlation owns Switchyard's well-known metadata keys and the rules
// that chain events together.
//
// One set of keys is spelled the same in a store's metadata column, in NATS
// headers and in span attributes; they are the typed constants of [Key]. Nobody
// writes "correlation_id" by hand.
//
// The chain follows Rails Event Store's CorrelatedHandler and EventStoreDB's
// $correlationId:
//
//   - an event appended with no causing message gets correlation_id = its own
//     event_id and no causation_id;
//   - an event appended while handling message M gets correlation_id =
//     M.correlation_id and causation_id = M.event_id.
//
// A consumer puts the message it is handling into the context with
// [NewContext]; anything appended with that context inherits from it through
// [Stamp]. Free-form application metadata (user id, request id, remote IP)
// travels the same way: [WithValues] adds it to a context, and a handled
// message's application metadata is inherited by what the handler appends.
//
//	ctx = correlation.WithValues(ctx, map[string]string{"user_id": "u-7"})
//	events, err := st.Append(ctx, "Visit-42", store.NoStream, ev) // stamped with correlation_id, user_id
//
// Everything here is a value or a function over values: safe for concurrent
// use. The package imports no database or broker.
package correlation

// Package instrument holds what Switchyard's packages share to report
// through OpenTelemetry: the instrumentation scope, the attribute keys of
// spans and metrics, and the fallback from a configured provider to the
// global one. The instruments themselves live beside the code they
// measure: the append span and counter in internal/backend, the relay's in
// bus, the handling span and the consumer metrics in handlers.
//
// Start with [Tracer] and [Meter]; [Event] gives an event's attributes.
// Everything here is safe for concurrent use.
package instrument

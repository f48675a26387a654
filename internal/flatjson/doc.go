// Package flatjson encodes and decodes JSON objects whose values are all
// strings — event metadata — without reflection.
//
// Append writes what encoding/json writes for a map[string]string (keys
// sorted, the same escapes; only a nil map differs: {} rather than null),
// so stored metadata does not depend on which of the two wrote it. Decode
// reads the compact form Append writes directly and hands anything else
// (whitespace, escapes, non-ASCII bytes, errors) to encoding/json, so it
// accepts and refuses exactly what encoding/json does. Metadata is encoded
// on every append and decoded on every read, relay and delivery; this
// package keeps that off the profile.
package flatjson

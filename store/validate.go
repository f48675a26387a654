package store

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/internal/flatjson"
)

// Limits on names and sizes.
const (
	MaxNameLen           = 63      // context and shard names
	MaxStreamLen         = 255     // stream names
	MaxTypeLen           = 128     // event types
	MaxMetadataKeyLen    = 255     // metadata keys
	DefaultMaxEventBytes = 1 << 20 // data plus metadata of one event
	MaxReadLimit         = 10000   // events returned by one read
)

// CheckName checks a context or shard name (field says which): 1 to 63 bytes
// of lowercase ASCII letters, digits, '_' and '-', starting with a letter or
// digit. Such a name is safe in a NATS subject, a JetStream stream name, an
// SQL identifier and a file name.
func CheckName(field, s string) error {
	if s == "" {
		return &InvalidError{Field: field, Value: s, Reason: "empty"}
	}
	if len(s) > MaxNameLen {
		return &InvalidError{Field: field, Value: s, Reason: "longer than " + strconv.Itoa(MaxNameLen) + " bytes"}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return &InvalidError{Field: field, Value: s, Reason: "byte " + strconv.Itoa(i) + " (" + strconv.Quote(s[i:i+1]) + ") not allowed: use lowercase letters, digits, '_' and '-', starting with a letter or digit"}
		}
	}
	return nil
}

// CheckStream checks a stream name: 1 to 255 bytes of UTF-8 without control
// characters.
func CheckStream(s string) error {
	return checkText("stream", s, MaxStreamLen)
}

// CheckType checks an event type: 1 to 128 bytes of ASCII letters, digits,
// '_', '-' and ':'. Types are subject tokens on the bus, so '.', '*', '>'
// and spaces are refused.
func CheckType(s string) error {
	if s == "" {
		return &InvalidError{Field: "event type", Value: s, Reason: "empty"}
	}
	if len(s) > MaxTypeLen {
		return &InvalidError{Field: "event type", Value: s, Reason: "longer than " + strconv.Itoa(MaxTypeLen) + " bytes"}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == ':':
		default:
			return &InvalidError{Field: "event type", Value: s, Reason: "byte " + strconv.Itoa(i) + " (" + strconv.Quote(s[i:i+1]) + ") not allowed: use letters, digits, '_', '-' and ':'"}
		}
	}
	return nil
}

func checkText(field, s string, max int) error {
	if s == "" {
		return &InvalidError{Field: field, Value: s, Reason: "empty"}
	}
	if len(s) > max {
		return &InvalidError{Field: field, Value: s, Reason: "longer than " + strconv.Itoa(max) + " bytes"}
	}
	return checkChars(field, s)
}

func checkChars(field, s string) error {
	if !utf8.ValidString(s) {
		return &InvalidError{Field: field, Value: s, Reason: "not valid UTF-8"}
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f {
			return &InvalidError{Field: field, Value: s, Reason: "control character at byte " + strconv.Itoa(i)}
		}
	}
	return nil
}

// CheckRead checks the arguments of a stream read.
func CheckRead(stream string, dir Direction, from int64, limit int) error {
	if err := CheckStream(stream); err != nil {
		return err
	}
	if dir != Forward && dir != Backward {
		return &InvalidError{Field: "direction", Value: strconv.Itoa(int(dir)), Reason: "want Forward or Backward"}
	}
	if dir == Forward && from < 0 {
		return &InvalidError{Field: "from version", Value: strconv.FormatInt(from, 10), Reason: "negative on a forward read"}
	}
	return CheckLimit(limit)
}

// CheckLimit checks a read limit: 1 to MaxReadLimit.
func CheckLimit(limit int) error {
	if limit < 1 || limit > MaxReadLimit {
		return &InvalidError{Field: "limit", Value: strconv.Itoa(limit), Reason: "want 1 to " + strconv.Itoa(MaxReadLimit)}
	}
	return nil
}

// CheckExpected checks an expected version.
func CheckExpected(e ExpectedVersion) error {
	if !e.Valid() {
		return &InvalidError{Field: "expected version", Value: strconv.FormatInt(int64(e), 10), Reason: "want Any, NoStream, StreamExists or Exact(n >= 0)"}
	}
	return nil
}

// OwnedKey reports whether the store sets metadata key k itself, from an
// event's columns and the store's context and shard: event_id, event_type,
// stream, stream_version, position, context, shard and recorded_at. They
// are not persisted in the metadata column, and a value an application
// gives for one of them is dropped on append.
func OwnedKey(k string) bool {
	switch correlation.Key(k) {
	case correlation.EventID, correlation.EventType, correlation.Stream, correlation.StreamVersion,
		correlation.Position, correlation.Context, correlation.Shard, correlation.RecordedAt:
		return true
	}
	return false
}

// Pending is an event validated and stamped, ready for a backend to write.
type Pending struct {
	Event    Event  // ID, Type, Data, RecordedAt set; Metadata holds the persisted keys
	Metadata []byte // the persisted metadata, JSON
}

// Prepare validates an append and stamps its events: it is what both
// backends run before writing. It generates missing IDs (UUIDv7), applies the
// correlation rules of ctx, refuses bad input with an *InvalidError and
// checks each event's size against maxBytes (data plus metadata).
func Prepare(ctx context.Context, stream string, expected ExpectedVersion, events []Event, maxBytes int, now time.Time) ([]Pending, error) {
	if err := CheckStream(stream); err != nil {
		return nil, err
	}
	if err := CheckExpected(expected); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, &InvalidError{Field: "events", Value: stream, Reason: "nothing to append"}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxEventBytes
	}
	out := make([]Pending, len(events))
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, ev := range events {
		if err := CheckType(ev.Type); err != nil {
			return nil, err
		}
		if ev.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, err
			}
			ev.ID = id
		}
		if _, dup := seen[ev.ID]; dup {
			return nil, &InvalidError{Field: "event id", Value: ev.ID.String(), Reason: "appears twice in one append"}
		}
		seen[ev.ID] = struct{}{}
		data, err := checkData(ev.Type, ev.Data, maxBytes)
		if err != nil {
			return nil, err
		}
		md := make(correlation.Metadata, len(ev.Metadata)+4)
		for k, v := range ev.Metadata {
			if OwnedKey(k) {
				continue
			}
			if k == "" || len(k) > MaxMetadataKeyLen {
				return nil, &InvalidError{Field: "metadata key", Value: k, Reason: "want 1 to " + strconv.Itoa(MaxMetadataKeyLen) + " bytes"}
			}
			if err := checkChars("metadata key", k); err != nil {
				return nil, err
			}
			if err := checkChars("metadata value of "+strconv.Quote(k), v); err != nil {
				return nil, err
			}
			md[k] = v
		}
		correlation.Stamp(ctx, md, ev.ID.String())
		mdJSON := flatjson.Append(make([]byte, 0, 128), md, nil)
		if n := len(data) + len(mdJSON); n > maxBytes {
			return nil, &InvalidError{Field: "event " + ev.Type, Value: ev.ID.String(), Reason: "data plus metadata is " + strconv.Itoa(n) + " bytes, over the limit of " + strconv.Itoa(maxBytes)}
		}
		ev.Data = data
		ev.Stream = stream
		ev.Version = 0
		ev.Position = Position{}
		ev.Metadata = md
		ev.RecordedAt = now
		ev.Link = false
		out[i] = Pending{Event: ev, Metadata: mdJSON}
	}
	return out, nil
}

var emptyObject = json.RawMessage("{}")

func checkData(typ string, data json.RawMessage, maxBytes int) (json.RawMessage, error) {
	if len(data) == 0 {
		return emptyObject, nil
	}
	field := "data of " + typ
	if len(data) > maxBytes {
		return nil, &InvalidError{Field: field, Value: clip(data), Reason: strconv.Itoa(len(data)) + " bytes, over the limit of " + strconv.Itoa(maxBytes)}
	}
	if !utf8.Valid(data) {
		return nil, &InvalidError{Field: field, Value: string(data), Reason: "not valid UTF-8"}
	}
	if !json.Valid(data) {
		return nil, &InvalidError{Field: field, Value: string(data), Reason: "not valid JSON"}
	}
	// PostgreSQL's jsonb refuses the NUL character; refuse it everywhere so
	// both backends accept the same events and SQL projections can cast
	// data to jsonb.
	if bytes.Contains(data, []byte(`\u0000`)) {
		return nil, &InvalidError{Field: field, Value: string(data), Reason: `contains \u0000, which PostgreSQL cannot turn into jsonb (as projections do)`}
	}
	return data, nil
}

// Complete fills in the store-owned metadata keys of ev from its fields and
// the store's context and shard. Backends call it on every event they return,
// before LinkedAt for an event read through a link.
func Complete(ev *Event, context, shard string) {
	if ev.Metadata == nil {
		ev.Metadata = make(correlation.Metadata, 8)
	}
	m := ev.Metadata
	o := format(ev)
	m.Set(correlation.EventID, o.ID)
	m.Set(correlation.EventType, ev.Type)
	m.Set(correlation.Stream, ev.Stream)
	m.Set(correlation.StreamVersion, o.Version)
	m.Set(correlation.Position, o.Position)
	m.Set(correlation.Context, context)
	m.Set(correlation.Shard, shard)
	m.Set(correlation.RecordedAt, o.RecordedAt)
}

// Owned is the text of an event's store-owned values that are not strings
// among its fields, as [Complete] writes them into its metadata.
type Owned struct {
	ID, Version, Position, RecordedAt string
}

// OwnedText returns the text of ev's event_id, stream_version, position and
// recorded_at. They are the strings of ev's metadata when they hold those
// values (as after [Complete]): nothing is allocated then.
func OwnedText(ev *Event) Owned {
	var arr [128]byte
	b, ends := appendOwned(arr[:0], ev)
	m := ev.Metadata
	if id, ok := m[string(correlation.EventID)]; ok && id == string(b[:ends[0]]) {
		if v := m[string(correlation.StreamVersion)]; v == string(b[ends[0]:ends[1]]) {
			if p := m[string(correlation.Position)]; p == string(b[ends[1]:ends[2]]) {
				if r := m[string(correlation.RecordedAt)]; r == string(b[ends[2]:]) {
					return Owned{id, v, p, r}
				}
			}
		}
	}
	return split(string(b), ends)
}

// format returns the text of ev's owned values in one allocation.
func format(ev *Event) Owned {
	var arr [128]byte
	b, ends := appendOwned(arr[:0], ev)
	return split(string(b), ends)
}

// appendOwned appends event_id, stream_version, position and recorded_at
// to b and says where the first three end.
func appendOwned(b []byte, ev *Event) ([]byte, [3]int) {
	var ends [3]int
	b = appendUUID(b, ev.ID)
	ends[0] = len(b)
	b = strconv.AppendInt(b, ev.Version, 10)
	ends[1] = len(b)
	b = ev.Position.append(b)
	ends[2] = len(b)
	return ev.RecordedAt.UTC().AppendFormat(b, time.RFC3339Nano), ends
}

func split(s string, ends [3]int) Owned {
	return Owned{s[:ends[0]], s[ends[0]:ends[1]], s[ends[1]:ends[2]], s[ends[2]:]}
}

// appendUUID appends id in its canonical form, as id.String writes it.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const hexdigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return b
}

// CheckIDs checks the IDs of a link.
func CheckIDs(stream string, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return &InvalidError{Field: "event ids", Value: stream, Reason: "nothing to link"}
	}
	seen := make(map[uuid.UUID]struct{}, len(ids))
	for _, id := range ids {
		if id == uuid.Nil {
			return &InvalidError{Field: "event id", Value: id.String(), Reason: "nil UUID"}
		}
		if _, dup := seen[id]; dup {
			return &InvalidError{Field: "event id", Value: id.String(), Reason: "appears twice in one link"}
		}
		seen[id] = struct{}{}
	}
	return nil
}

// clip returns the start of b, enough to recognise it in an error message.
func clip(b []byte) string {
	if len(b) > 80 {
		b = b[:80]
	}
	return string(b)
}

// Place is where a stored event is: its stream and version there.
type Place struct {
	Stream  string
	Version int64
}

// Diagnose explains an append of pending to stream at expected that could not
// go ahead, from where its IDs are stored (found) and the stream's last
// version: an idempotent replay — every ID already in the stream at
// consecutive versions, in order, starting where expected says — returns the
// version to read the stored events from; otherwise the error is a
// *DuplicateEventError (an ID is stored) or a *WrongExpectedVersionError.
// Backends call it on the failure path only.
func Diagnose(stream string, expected ExpectedVersion, pending []Pending, found map[uuid.UUID]Place, current int64) (replayFrom int64, err error) {
	if len(found) == 0 {
		return -1, &WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}
	}
	first, ok := found[pending[0].Event.ID]
	replay := ok && len(found) == len(pending) && first.Stream == stream
	for i, p := range pending {
		at, ok := found[p.Event.ID]
		replay = replay && ok && at.Stream == stream && at.Version == first.Version+int64(i)
	}
	if replay {
		switch {
		case expected == NoStream:
			replay = first.Version == 0
		case expected == StreamExists:
			replay = first.Version > 0
		case expected >= 0:
			replay = first.Version == int64(expected)+1
		}
	}
	if replay {
		return first.Version, nil
	}
	for _, p := range pending {
		if _, ok := found[p.Event.ID]; ok {
			return -1, &DuplicateEventError{Stream: stream, ID: p.Event.ID.String()}
		}
	}
	return -1, &WrongExpectedVersionError{Stream: stream, Expected: expected, Actual: current}
}

// IDs returns the IDs of pending, in order.
func IDs(pending []Pending) []uuid.UUID {
	ids := make([]uuid.UUID, len(pending))
	for i, p := range pending {
		ids[i] = p.Event.ID
	}
	return ids
}

// LinkedAt turns ev, a completed original event, into what a read through a
// link at (stream, version) returns: its metadata keeps the original place.
func LinkedAt(ev *Event, stream string, version int64) {
	ev.Link = true
	ev.Stream, ev.Version = stream, version
}

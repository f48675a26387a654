package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
)

// Event is one domain event.
//
// When appending, set Type, Data and optionally ID (a UUIDv7 is generated when
// it is zero) and Metadata (free-form application keys; well-known keys are
// set by the store). The other fields are filled in by the store.
type Event struct {
	ID       uuid.UUID
	Type     string
	Data     json.RawMessage
	Metadata correlation.Metadata

	Stream     string   // the stream the event was read from
	Version    int64    // its version in Stream
	Position   Position // its place in the store's global log
	RecordedAt time.Time

	// Link is true when the event was read through a link: Stream and Version
	// are the link's, everything else the original event's (its metadata keeps
	// the original stream and stream_version).
	Link bool
}

// NewEvent returns an event of type typ whose Data is v encoded as JSON.
func NewEvent(typ string, v any) (Event, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("store: encode %s: %w", typ, err)
	}
	return Event{Type: typ, Data: b}, nil
}

// Position is an event's place in a store's global log. Positions compare in
// the order [Store.ReadAll] returns events.
//
// Commit is the coarse order: on PostgreSQL the id (xid8) of the transaction
// that appended the event, raised where needed so that a stream's later
// version never sorts before its earlier ones (so one transaction's events
// may carry two values, and others' events may sort between them); on
// SQLite, whose transactions commit one at a time, it is 0. Seq orders events within equal
// Commit values. The zero Position is before every event.
type Position struct {
	Commit uint64
	Seq    int64
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Commit < q.Commit:
		return -1
	case p.Commit > q.Commit:
		return 1
	case p.Seq < q.Seq:
		return -1
	case p.Seq > q.Seq:
		return 1
	}
	return 0
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// String formats p as "commit:seq", the form [ParsePosition] reads and the
// value of the position metadata key.
func (p Position) String() string {
	var b [41]byte // two 20-digit numbers and the colon
	t, _ := p.AppendText(b[:0])
	return string(t)
}

// AppendText appends the form [Position.String] writes to b; it never
// fails (encoding.TextAppender).
func (p Position) AppendText(b []byte) ([]byte, error) {
	b = strconv.AppendUint(b, p.Commit, 10)
	b = append(b, ':')
	return strconv.AppendInt(b, p.Seq, 10), nil
}

// ParsePosition parses the form [Position.String] writes.
func ParsePosition(s string) (Position, error) {
	c, q, ok := strings.Cut(s, ":")
	if ok {
		commit, err1 := strconv.ParseUint(c, 10, 64)
		seq, err2 := strconv.ParseInt(q, 10, 64)
		if err1 == nil && err2 == nil && seq >= 0 {
			return Position{Commit: commit, Seq: seq}, nil
		}
	}
	return Position{}, &InvalidError{Field: "position", Value: s, Reason: `want "commit:seq"`}
}

// ExpectedVersion is what an append expects of its stream: [Any], [NoStream],
// [StreamExists] or [Exact].
type ExpectedVersion int64

// The expected-version modes besides [Exact].
const (
	Any          ExpectedVersion = -2 // no expectation
	NoStream     ExpectedVersion = -1 // the stream must not exist yet
	StreamExists ExpectedVersion = -4 // the stream must have at least one event
)

// Exact expects the stream's last version to be v (v >= 0).
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String names the mode, or the exact version.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	}
	return strconv.FormatInt(int64(e), 10)
}

// Matches reports whether a stream whose last version is current (-1: no
// events) is at e.
func (e ExpectedVersion) Matches(current int64) bool {
	switch e {
	case Any:
		return true
	case NoStream:
		return current == -1
	case StreamExists:
		return current >= 0
	}
	return current == int64(e)
}

// Valid reports whether e is one of the modes or an exact version >= 0.
func (e ExpectedVersion) Valid() bool {
	return e >= 0 || e == Any || e == NoStream || e == StreamExists
}

// Direction is the direction of a stream read.
type Direction int

// Read directions.
const (
	Forward Direction = iota
	Backward
)

package store

import (
	"strconv"
	"unicode/utf8"
)

// Limits on names and sizes.
const (
	MaxNameLen           = 63            // context, shard, group and relay names
	MaxStreamLen         = 255           // stream names
	MaxTypeLen           = 128           // event types
	MaxMetadataKeyLen    = 255           // metadata keys
	DefaultMaxEventBytes = 1<<20 - 8<<10 // data plus metadata of one event: its NATS message, dead-lettered too, fits NATS's default 1 MiB
	MaxReadLimit         = 10000         // events returned by one read
)

// CheckName checks a context, shard, group or relay name (field says
// which): 1 to 63 bytes of lowercase ASCII letters, digits, '_' and '-',
// starting with a letter or digit. Such a name is safe in a NATS subject, a
// JetStream stream name, an SQL identifier and a file name.
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
	if s == "" {
		return &InvalidError{Field: "stream", Value: s, Reason: "empty"}
	}
	if len(s) > MaxStreamLen {
		return &InvalidError{Field: "stream", Value: s, Reason: "longer than " + strconv.Itoa(MaxStreamLen) + " bytes"}
	}
	return checkChars("stream", s)
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

// CheckMetadata checks an event's application metadata: keys of 1 to
// MaxMetadataKeyLen bytes, keys and values valid UTF-8 without control
// characters. Append refuses an event whose metadata it refuses, after
// dropping the keys the store sets itself (see the package doc).
func CheckMetadata(md map[string]string) error {
	for k, v := range md {
		if k == "" || len(k) > MaxMetadataKeyLen {
			return &InvalidError{Field: "metadata key", Value: k, Reason: "want 1 to " + strconv.Itoa(MaxMetadataKeyLen) + " bytes"}
		}
		if err := checkChars("metadata key", k); err != nil {
			return err
		}
		if err := checkChars("metadata value of "+strconv.Quote(k), v); err != nil {
			return err
		}
	}
	return nil
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

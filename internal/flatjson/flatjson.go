package flatjson

import (
	"encoding/json"
	"slices"
)

// Append appends m as a JSON object to dst, keys sorted, leaving out the
// keys skip reports (skip may be nil). The bytes are those json.Marshal
// writes for the same entries.
func Append(dst []byte, m map[string]string, skip func(k string) bool) []byte {
	var arr [16]string
	keys := arr[:0]
	for k := range m {
		if skip == nil || !skip(k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendString appends s as a JSON string. Plain printable ASCII is copied;
// anything else is left to encoding/json, so the escapes are its own.
func appendString(dst []byte, s string) []byte {
	if !plain(s) {
		b, _ := json.Marshal(s) // a string always marshals
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// plain reports whether s needs no escape: printable ASCII other than the
// characters encoding/json escapes (quote, backslash, and <, >, & for HTML).
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// Decode reads the JSON object b into m, which must not be nil; entries
// already in m stay unless b names them. It accepts and refuses what
// json.Unmarshal into a map[string]string does, and on error leaves m as
// json.Unmarshal would; null leaves m as it is.
func Decode(b []byte, m map[string]string) error {
	if decodeCompact(b, m) {
		return nil
	}
	// json.Unmarshal takes the map's address: a copy of it, so that only
	// this path moves a map variable to the heap.
	into := m
	return json.Unmarshal(b, &into)
}

// decodeCompact reads b when it is a compact object of plain strings, the
// form Append writes for plain entries, putting its entries in m. It
// reports false, having put nothing in m, for any other input.
func decodeCompact(b []byte, m map[string]string) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	if len(b) == 2 {
		return true
	}
	// First pass: check the shape, so a fallback leaves m untouched.
	n := 0
	for i := 1; ; {
		if i = plainString(b, i); i < 0 || i >= len(b) || b[i] != ':' {
			return false
		}
		if i = plainString(b, i+1); i < 0 || i >= len(b) {
			return false
		}
		n++
		if b[i] == '}' {
			if i != len(b)-1 {
				return false
			}
			break
		}
		if b[i] != ',' {
			return false
		}
		i++
	}
	// Every key and value is a piece of one string: one allocation.
	s := string(b)
	for i := 1; n > 0; n-- {
		j := plainString(b, i)
		k := s[i+1 : j-1]
		i = plainString(b, j+1)
		m[k] = s[j+2 : i-1]
		i++
	}
	return true
}

// plainString skips the string starting at b[i] (its opening quote) when it
// holds only printable ASCII and no backslash, returning the index after
// its closing quote; it returns -1 for anything else.
func plainString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1
		case c < 0x20 || c > 0x7e || c == '\\':
			return -1
		}
	}
	return -1
}

package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-go/switchyard/store"
)

func TestExpectedVersionMatches(t *testing.T) {
	cases := []struct {
		e    store.ExpectedVersion
		cur  int64
		want bool
	}{
		{store.Any, -1, true}, {store.Any, 5, true},
		{store.NoStream, -1, true}, {store.NoStream, 0, false},
		{store.StreamExists, -1, false}, {store.StreamExists, 0, true},
		{store.Exact(3), 3, true}, {store.Exact(3), 4, false}, {store.Exact(0), -1, false},
	}
	for _, c := range cases {
		if got := c.e.Matches(c.cur); got != c.want {
			t.Errorf("%s.Matches(%d) = %v", c.e, c.cur, got)
		}
	}
	if store.ExpectedVersion(-3).Valid() || !store.Exact(0).Valid() {
		t.Error("Valid")
	}
}

func TestParsePosition(t *testing.T) {
	for _, bad := range []string{"", "1", "a:b", "1:-2", ":", "1:2:3"} {
		if _, err := store.ParsePosition(bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("ParsePosition(%q): %v", bad, err)
		}
	}
}

func TestCheckMetadata(t *testing.T) {
	if err := store.CheckMetadata(map[string]string{"user_id": "u-1", "remote ip": "10.0.0.1", "note": ""}); err != nil {
		t.Fatalf("good metadata: %v", err)
	}
	for name, md := range map[string]map[string]string{
		"empty key":     {"": "x"},
		"long key":      {strings.Repeat("k", store.MaxMetadataKeyLen+1): "x"},
		"control key":   {"a\nb": "x"},
		"control":       {"k": "a\x00b"},
		"bad UTF-8":     {"k": "\xff"},
		"bad UTF-8 key": {"\xfe": "x"},
	} {
		if err := store.CheckMetadata(md); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", name, err)
		}
	}
}

func TestPositionText(t *testing.T) {
	p := store.Position{Commit: 18446744073709551615, Seq: 9223372036854775807}
	b, err := p.AppendText([]byte("at "))
	if err != nil || string(b) != "at "+p.String() {
		t.Fatalf("AppendText = %q, %v; want %q", b, err, "at "+p.String())
	}
	if q, err := store.ParsePosition(p.String()); err != nil || q != p {
		t.Fatalf("ParsePosition(%q) = %v, %v", p, q, err)
	}
}

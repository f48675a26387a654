package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

func TestPrepareDefaults(t *testing.T) {
	p, err := store.Prepare(context.Background(), "s", store.Any, []store.Event{{Type: "Ping"}}, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(p[0].Event.Data) != "{}" || p[0].Event.ID.Version() != 7 {
		t.Errorf("defaults: data %s id %s", p[0].Event.Data, p[0].Event.ID)
	}
}

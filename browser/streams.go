package browser

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/store"
)

// PageSize is how many streams or events one page lists.
const PageSize = 50

// shards lists a context's stores: one per shard.
func (b *Browser) shards(w http.ResponseWriter, r *http.Request) {
	name, err := b.checkContext(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	b.render(w, r, http.StatusOK, "shards", "Shards of "+name, struct {
		Context string
		Shards  []string
	}{name, b.cfg.Registry.Shards(name)})
}

type streamsData struct {
	Context, Shard string
	Prefix, After  string
	Streams        []store.StreamInfo
	Next           string // the After of the next page; "" on the last
}

// streams lists a store's streams, PageSize at a time, by prefix.
func (b *Browser) streams(w http.ResponseWriter, r *http.Request) {
	st, cat, err := b.store(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	q := r.URL.Query()
	d := streamsData{Context: st.Context(), Shard: st.Shard(), Prefix: q.Get("prefix"), After: q.Get("after")}
	list, err := cat.Streams(ctx, d.Prefix, d.After, PageSize+1)
	if err == nil && d.After != "" && len(list) == 0 {
		err = notFound("no stream after %q in %s/%s", d.After, d.Context, d.Shard)
	}
	if err != nil {
		b.fail(w, r, err)
		return
	}
	if len(list) > PageSize {
		list = list[:PageSize]
		d.Next = list[PageSize-1].Name
	}
	d.Streams = list
	b.render(w, r, http.StatusOK, "streams", "Streams of "+d.Context+"/"+d.Shard, d)
}

type streamData struct {
	Context, Shard, Stream string
	Events                 []store.Event
	From, To, Last         int64 // the first and last version shown, the stream's last
	Prev, Next             int64 // the From of the pages around; -1 where none
}

// stream shows a stream's events, PageSize at a time from version ?from
// (default: the last page), both ways.
func (b *Browser) stream(w http.ResponseWriter, r *http.Request) {
	st, _, err := b.store(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	d, err := readPage(ctx, st, r.PathValue("stream"), r.URL.Query().Get("from"))
	if err != nil {
		b.fail(w, r, err)
		return
	}
	b.render(w, r, http.StatusOK, "stream", d.Stream, d)
}

// readPage reads the page of stream that starts at from ("" for the last).
func readPage(ctx context.Context, st store.Store, stream, from string) (streamData, error) {
	d := streamData{Context: st.Context(), Shard: st.Shard(), Stream: stream}
	if err := store.CheckStream(stream); err != nil {
		return d, notFound("%v", err)
	}
	last, err := st.Read(ctx, stream, store.Backward, -1, 1)
	if err != nil {
		return d, err
	}
	if len(last) == 0 {
		return d, notFound("stream %q has no events in %s/%s", stream, d.Context, d.Shard)
	}
	d.Last = last[0].Version
	d.From = max(d.Last-PageSize+1, 0)
	if from != "" {
		d.From, err = strconv.ParseInt(from, 10, 64)
		if err != nil || d.From < 0 || d.From > d.Last {
			return d, notFound("no page from version %q: stream %q has versions 0 to %d", from, stream, d.Last)
		}
	}
	if d.Events, err = st.Read(ctx, stream, store.Forward, d.From, PageSize); err != nil {
		return d, err
	}
	d.To = d.From + int64(len(d.Events)) - 1
	d.Prev, d.Next = -1, -1
	if d.From > 0 {
		d.Prev = max(d.From-PageSize, 0)
	}
	if d.From+PageSize <= d.Last {
		d.Next = d.From + PageSize
	}
	return d, nil
}

type eventData struct {
	Context, Shard string // the store it is in
	Event          store.Event
	Meta           []metaPair
	Chain          string // its correlation_id
	Cause          *found // the event that caused it; nil when none is known
	CauseID        string // causation_id when no store holds that event
	Caused         []found
	Complete       bool // every store answered, in full, the search for its effects
}

type metaPair struct{ Key, Value string }

// found is an event and the store it is in.
type found struct {
	store.Event
	Context, Shard string
}

// event shows one event: data, metadata, what caused it, what it caused.
func (b *Browser) event(w http.ResponseWriter, r *http.Request) {
	st, cat, err := b.store(r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		b.fail(w, r, notFound("%q is not an event id", r.PathValue("id")))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	ev, err := cat.Event(ctx, id)
	if errors.Is(err, store.ErrEventNotFound) {
		err = notFound("no event %s in %s/%s", id, st.Context(), st.Shard())
	}
	if err != nil {
		b.fail(w, r, err)
		return
	}
	b.render(w, r, http.StatusOK, "event", ev.Type+" "+short(ev.ID.String()), b.explain(ctx, found{ev, st.Context(), st.Shard()}))
}

// explain finds, in every store, what caused f and what it caused.
func (b *Browser) explain(ctx context.Context, f found) eventData {
	ev := f.Event
	d := eventData{Context: f.Context, Shard: f.Shard, Event: ev, Chain: ev.Metadata.Get(correlation.CorrelationID), Complete: true}
	for k, v := range ev.Metadata {
		d.Meta = append(d.Meta, metaPair{k, v})
	}
	sort.Slice(d.Meta, func(i, j int) bool { return d.Meta[i].Key < d.Meta[j].Key })
	if cause := ev.Metadata.Get(correlation.CausationID); cause != "" && cause != ev.ID.String() {
		d.CauseID = cause
		if id, err := uuid.Parse(cause); err == nil {
			if c, err := b.lookup(ctx, id); err == nil {
				d.Cause, d.CauseID = &c, ""
			}
		}
	}
	if d.Chain == "" {
		return d
	}
	chain := b.gather(ctx, d.Chain)
	d.Complete = len(chain.Failed) == 0 && !chain.Truncated
	for _, c := range chain.Events {
		if c.ID != ev.ID && c.Metadata.Get(correlation.CausationID) == ev.ID.String() {
			d.Caused = append(d.Caused, c)
		}
	}
	return d
}

// findEvent looks for an event in every store and sends the browser to it.
func (b *Browser) findEvent(w http.ResponseWriter, r *http.Request) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		b.fail(w, r, notFound("%q is not an event id", r.PathValue("id")))
		return
	}
	f, err := b.lookup(r.Context(), id)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	http.Redirect(w, r, eventURL(r, f), http.StatusFound)
}

// eventURL is the address of f's page.
func eventURL(r *http.Request, f found) string {
	return base(r) + "stores/" + url.PathEscape(f.Context) + "/" + url.PathEscape(f.Shard) + "/events/" + f.ID.String()
}

// lookup asks every store, in parallel, for the event with id.
func (b *Browser) lookup(ctx context.Context, id uuid.UUID) (found, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := b.fanOut(ctx, func(ctx context.Context, cat store.Catalog) ([]store.Event, error) {
		ev, err := cat.Event(ctx, id)
		if errors.Is(err, store.ErrEventNotFound) {
			return nil, nil
		}
		return []store.Event{ev}, err
	})
	if len(results.Events) > 0 {
		return results.Events[0], nil
	}
	if len(results.Failed) > 0 {
		return found{}, &pageError{Status: http.StatusServiceUnavailable,
			Message: "event " + id.String() + " is in none of the stores that answered; these did not: " + results.Failures()}
	}
	return found{}, notFound("no store holds an event %s", id)
}

// search sends the browser to what ?q names: the event with that id, or
// else the correlation chain.
func (b *Browser) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		http.Redirect(w, r, base(r), http.StatusFound)
		return
	}
	if id, err := uuid.Parse(q); err == nil {
		if f, err := b.lookup(r.Context(), id); err == nil {
			http.Redirect(w, r, eventURL(r, f), http.StatusFound)
			return
		}
	}
	http.Redirect(w, r, base(r)+"chains/"+url.PathEscape(q), http.StatusFound)
}

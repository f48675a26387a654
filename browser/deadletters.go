package browser

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/store"
)

type deadLettersData struct {
	Context, Group string
	Letters        []deadletter.Letter
	From, Next     uint64 // this page's first sequence; the next page's, 0 on the last
	Done           string // what the last write asked for
	None           bool   // the context has no dead-letter queue yet
}

// queue opens the dead-letter queue of a page's {context}; nil, nil when
// the context has none yet.
func (b *Browser) queue(ctx context.Context, r *http.Request) (*deadletter.Queue, string, error) {
	name, err := b.checkContext(r)
	if err != nil {
		return nil, "", err
	}
	q, err := deadletter.Open(ctx, b.cfg.Conn, name)
	if errors.Is(err, deadletter.ErrNoQueue) {
		return nil, name, nil
	}
	return q, name, err
}

// deadLetters lists a context's dead letters, PageSize at a time, all
// groups' or ?group's.
func (b *Browser) deadLetters(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	q, name, err := b.queue(ctx, r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	v := r.URL.Query()
	d := deadLettersData{Context: name, Group: v.Get("group"), Done: v.Get("done"), None: q == nil}
	if v.Has("from") {
		if d.From, err = strconv.ParseUint(v.Get("from"), 10, 64); err != nil {
			b.fail(w, r, notFound("no page from %q: not a sequence", v.Get("from")))
			return
		}
	}
	if q != nil {
		d.Letters, err = q.List(ctx, d.Group, d.From, PageSize+1)
		if errors.Is(err, store.ErrInvalid) {
			err = notFound("%v", err)
		}
		if err != nil {
			b.fail(w, r, err)
			return
		}
		if len(d.Letters) > PageSize {
			d.Next = d.Letters[PageSize].Seq
			d.Letters = d.Letters[:PageSize]
		}
	}
	b.render(w, r, http.StatusOK, "deadletters", "Dead letters of "+name, d)
}

type deadLetterData struct {
	Context string
	Letter  deadletter.Letter
	Parked  []deadletter.Letter
}

// deadLetter shows one dead letter: its error, event, and what is parked
// behind it.
func (b *Browser) deadLetter(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	q, name, l, err := b.letter(ctx, r)
	if err != nil {
		b.fail(w, r, err)
		return
	}
	d := deadLetterData{Context: name, Letter: l}
	if l.ParkKey != 0 && !l.IsParked {
		if d.Parked, err = q.Parked(ctx, l.Group, l.ParkKey, 0, PageSize); err != nil {
			b.fail(w, r, err)
			return
		}
	}
	b.render(w, r, http.StatusOK, "deadletter", "Dead letter "+strconv.FormatUint(l.Seq, 10), d)
}

// letter reads the dead letter a page's {context} and {seq} name.
func (b *Browser) letter(ctx context.Context, r *http.Request) (*deadletter.Queue, string, deadletter.Letter, error) {
	q, name, err := b.queue(ctx, r)
	if err != nil {
		return nil, "", deadletter.Letter{}, err
	}
	seq, perr := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if q == nil || perr != nil {
		return nil, "", deadletter.Letter{}, notFound("no dead letter %q in %s", r.PathValue("seq"), name)
	}
	l, err := q.Get(ctx, seq)
	if errors.Is(err, deadletter.ErrNotFound) {
		err = notFound("no dead letter %d in %s: replayed, discarded, or never there", seq, name)
	}
	return q, name, l, err
}

// settle replays or discards a dead letter, when writes are enabled and
// the form carries the token; then back to the list, saying what was
// asked for.
func (b *Browser) settle(w http.ResponseWriter, r *http.Request) {
	if !b.cfg.Writes {
		b.fail(w, r, &pageError{Status: http.StatusForbidden, Message: "the browser is read-only: writes are not enabled"})
		return
	}
	if !b.checkToken(r) {
		b.fail(w, r, &pageError{Status: http.StatusForbidden, Message: "the form's token is missing or stale: reload the page"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	q, name, l, err := b.letter(ctx, r)
	if err == nil {
		err = act(ctx, q, l.Seq, r.PathValue("action"), r.PostFormValue("followers"))
	}
	if errors.Is(err, deadletter.ErrParked) {
		err = &pageError{Status: http.StatusConflict, Message: err.Error()}
	}
	if err != nil {
		b.fail(w, r, err)
		return
	}
	done := r.PathValue("action") + " of dead letter " + strconv.FormatUint(l.Seq, 10) + " asked for"
	http.Redirect(w, r, base(r)+"deadletters/"+pathEsc(name)+"/?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// act asks the queue for action on seq.
func act(ctx context.Context, q *deadletter.Queue, seq uint64, action, followers string) error {
	switch action {
	case "replay":
		return q.Replay(ctx, seq)
	case "discard":
		f := deadletter.ReleaseFollowers
		if followers == "drop" {
			f = deadletter.DropFollowers
		}
		return q.Discard(ctx, seq, f)
	}
	return notFound("no action %q: replay or discard", action)
}

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
	d := deadLettersData{Context: name, Group: v.Get("group"), Done: done(v), None: q == nil}
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
	if v.Has("from") && len(d.Letters) == 0 {
		b.fail(w, r, notFound("no dead letters from sequence %d on", d.From))
		return
	}
	b.render(w, r, http.StatusOK, "deadletters", "Dead letters of "+name, d)
}

type deadLetterData struct {
	Context  string
	Letter   deadletter.Letter
	Parked   []deadletter.Letter // the first PageSize
	PageSize int
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
	d := deadLetterData{Context: name, Letter: l, PageSize: PageSize}
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
// the form carries the client's token; then back to the list, saying
// what was asked for.
func (b *Browser) settle(w http.ResponseWriter, r *http.Request) {
	if err := b.checkWrite(r); err != nil {
		b.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	q, name, l, err := b.letter(ctx, r)
	action := r.PathValue("action")
	if err == nil {
		err = act(ctx, q, l.Seq, action, r.PostFormValue("followers"))
	}
	var pe *pageError
	if err != nil && !errors.As(err, &pe) && (errors.Is(err, deadletter.ErrParked) || errors.Is(err, store.ErrInvalid)) {
		err = &pageError{Status: http.StatusConflict, Message: "dead letter " + r.PathValue("seq") + " cannot be " + action + "ed: " + scrub(err.Error())}
	}
	if err != nil {
		b.fail(w, r, err)
		return
	}
	http.Redirect(w, r, base(r)+"deadletters/"+url.PathEscape(name)+"/?done="+action+"&seq="+strconv.FormatUint(l.Seq, 10), http.StatusSeeOther)
}

// done says what the last write asked for, from the list page's query:
// built here, so that a link cannot put words on the page.
func done(v url.Values) string {
	seq, err := strconv.ParseUint(v.Get("seq"), 10, 64)
	if a := v.Get("done"); err == nil && (a == "replay" || a == "discard") {
		return a + " of dead letter " + strconv.FormatUint(seq, 10) + " asked for"
	}
	return ""
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

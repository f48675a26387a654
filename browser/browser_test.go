package browser_test

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/switchyard-go/switchyard/browser"
)

// get fetches a page without following redirects.
func get(t *testing.T, u string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func mustContain(t *testing.T, page, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: no %q in the page", page, w)
		}
	}
}

// The pages over a chain of four events in two contexts and two shards.
func TestPages(t *testing.T) {
	d := deploy(t, false)
	first := d.chainAcross(t)
	cid := first.ID.String()

	code, body, _ := get(t, d.url)
	if code != http.StatusOK {
		t.Fatalf("overview: %d\n%s", code, body)
	}
	mustContain(t, "overview", body, `<base href="/browse/">`, "tenant-a", "tenant-b", "billing", "replica-1", `href="stores/visits/tenant-a/"`)

	code, body, _ = get(t, d.url+"stores/visits/")
	if code != http.StatusOK {
		t.Fatalf("shards: %d", code)
	}
	mustContain(t, "shards", body, `href="stores/visits/tenant-a/"`, `href="stores/visits/tenant-b/"`)

	code, body, _ = get(t, d.url+"stores/visits/tenant-a/?prefix=Visit-")
	if code != http.StatusOK {
		t.Fatalf("streams: %d", code)
	}
	mustContain(t, "streams", body, `href="stores/visits/tenant-a/streams/Visit-1"`)

	code, body, _ = get(t, d.url+"stores/billing/tenant-b/streams/Charge-2")
	if code != http.StatusOK {
		t.Fatalf("stream: %d", code)
	}
	mustContain(t, "stream", body, "ChargeRaised", `href="chains/`+cid+`"`)

	code, body, _ = get(t, d.url+"stores/visits/tenant-a/events/"+cid)
	if code != http.StatusOK {
		t.Fatalf("event: %d", code)
	}
	mustContain(t, "event", body, "started its chain", "ChargeRaised", "VisitBooked", `href="stores/billing/tenant-a/events/`, `href="stores/visits/tenant-b/events/`)

	code, body, _ = get(t, d.url+"chains/"+cid)
	if code != http.StatusOK {
		t.Fatalf("chain: %d", code)
	}
	mustContain(t, "chain", body, "<b>4</b> events", "in <b>4</b> stores")
	if n := strings.Count(body, `class="node"`); n != 4 {
		t.Errorf("chain: %d nodes in the tree, want 4", n)
	}

	code, _, h := get(t, d.url+"events/"+cid)
	if code != http.StatusFound || h.Get("Location") != "/browse/stores/visits/tenant-a/events/"+cid {
		t.Errorf("events/%s: %d to %q, want 302 to its store's page", cid, code, h.Get("Location"))
	}
	code, _, h = get(t, d.url+"go?q="+cid)
	if code != http.StatusFound || !strings.Contains(h.Get("Location"), "/events/"+cid) {
		t.Errorf("search: %d to %q, want the event", code, h.Get("Location"))
	}
	code, _, h = get(t, d.url+"go?q=order-77")
	if code != http.StatusFound || h.Get("Location") != "/browse/chains/order-77" {
		t.Errorf("search of a non-id: %d to %q, want its chain", code, h.Get("Location"))
	}
}

// Bad ids, unknown stores, out-of-range pages: a 404 page that says why,
// never a 500.
func TestNotFound(t *testing.T) {
	d := deploy(t, true)
	d.chainAcross(t)
	for path, want := range map[string]string{
		"nowhere":                                           "no page at /nowhere",
		"stores/visits/tenant-z/":                           "tenant-z",
		"stores/orders/tenant-a/":                           "orders",
		"stores/visits/tenant-a/events/not-a-uuid":          "is not an event id",
		"stores/visits/tenant-a/events/" + uuid.NewString(): "no event",
		"stores/visits/tenant-a/streams/Visit-404":          "has no events",
		"stores/visits/tenant-a/streams/Visit-1?from=7":     "no page from version",
		"stores/visits/tenant-a/streams/Visit-1?from=-1":    "no page from version",
		"stores/visits/tenant-a/streams/Visit-1?from=abc":   "no page from version",
		"events/" + uuid.NewString():                        "no store holds",
		"chains/" + uuid.NewString():                        "no store holds",
		"deadletters/orders/":                               "no context",
		"deadletters/visits/12345":                          "no dead letter",
		"deadletters/visits/abc":                            "no dead letter",
		"deadletters/visits/?from=abc":                      "not a sequence",
		"tail/orders/":                                      "no context",
		"tail/orders/events":                                "no context",
		"stores/visits/tenant-a/?prefix=%FF":                "stream prefix",
		"stores/visits/tenant-a/?after=a%00":                "streams after",
		"stores/visits/tenant-a/?after=zzzz":                "no stream after",
		"chains/%FF":                                        "not a correlation id",
		"deadletters/visits/?from=999999":                   "no dead letters from",
		"stores/orders/":                                    "no context",
	} {
		code, body, _ := get(t, d.url+path)
		if code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, code)
		}
		mustContain(t, path, body, want)
		if strings.Contains(body, "goroutine") || strings.Contains(body, ".go:") {
			t.Errorf("%s: the page shows a stack trace", path)
		}
	}
}

// Event data and metadata are escaped: a script in them stays text.
func TestScriptInDataIsInert(t *testing.T) {
	d := deploy(t, false)
	ev := d.script(t)
	code, body, h := get(t, d.url+"stores/visits/tenant-a/events/"+ev.ID.String())
	if code != http.StatusOK {
		t.Fatalf("event: %d", code)
	}
	if strings.Contains(body, `<script>alert`) {
		t.Error("the event's data is in the page unescaped")
	}
	mustContain(t, "event", body, `&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;`)
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// Writes need the operator's consent, a request from the browser's own
// pages, and the client's token.
func TestWritesGuarded(t *testing.T) {
	post := func(t *testing.T, d *deployment, cookie, token string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, d.url+"deadletters/visits/12345/replay", strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: "sw_browser_token", Value: cookie})
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	token := strings.Repeat("ab", 32)
	ro := deploy(t, false)
	if code, body := post(t, ro, token, token); code != http.StatusForbidden || !strings.Contains(body, "read-only") {
		t.Errorf("read-only replay: %d, want 403 saying read-only", code)
	}
	rw := deploy(t, true)
	for name, tc := range map[string]struct {
		cookie, form string
		header       []string
		code         int
		want         string
	}{
		"no cookie":        {"", token, nil, http.StatusForbidden, "token"},
		"a forged token":   {token, "forged", nil, http.StatusForbidden, "token"},
		"another site":     {token, token, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden, "refused"},
		"the client's own": {token, token, []string{"Sec-Fetch-Site", "same-origin"}, http.StatusNotFound, "no dead letter"},
	} {
		if code, body := post(t, rw, tc.cookie, tc.form, tc.header...); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, want %d saying %q\n%s", name, code, tc.code, tc.want, body)
		}
	}
	_, _, h := get(t, rw.url)
	if !strings.Contains(h.Get("Set-Cookie"), "sw_browser_token=") || !strings.Contains(h.Get("Set-Cookie"), "SameSite=Strict") {
		t.Errorf("the first page sets no token cookie: %q", h.Get("Set-Cookie"))
	}
}

// The live tail sends events with their stream sequence as ids, resumes
// after Last-Event-ID, and ends when the Browser is closed.
func TestTail(t *testing.T) {
	d := deploy(t, false)
	d.chainAcross(t)
	read := func(lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequest(http.MethodGet, d.url+"tail/visits/events", nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("Content-Type %q", ct)
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	next := func(r *bufio.Reader) (id, data string) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("the tail ended: %v", err)
			}
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimSpace(line[4:])
			case strings.HasPrefix(line, "data: "):
				return id, line[6:]
			}
		}
	}
	// The two shards' relays publish at once: either visit may be first.
	r, done := read("")
	id1, first := next(r)
	id2, second := next(r)
	visits := func(data string) bool {
		return strings.Contains(data, `"type":"VisitBooked"`) && (strings.Contains(data, `"stream":"Visit-1"`) || strings.Contains(data, `"stream":"Visit-2"`))
	}
	if id1 != "1" || id2 != "2" || !visits(first) || !visits(second) || first == second {
		t.Errorf("the first two events, want Visit-1 and Visit-2: %s %s, %s %s", id1, first, id2, second)
	}
	done()
	r, done = read("1")
	defer done()
	if id, data := next(r); id != "2" || data != second {
		t.Errorf("after Last-Event-ID 1: id %s %s, want id 2 %s", id, data, second)
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, r)
		ended <- err
	}()
	d.browser.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the tail goes on after Close")
	}
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	_, err := browser.New(browser.Config{})
	var ce *browser.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Registry" {
		t.Errorf("New(no registry) = %v, want a ConfigError naming Registry", err)
	}
}

package browser

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
)

// Config configures a Browser.
type Config struct {
	// Registry holds the stores shown: every context and shard it has.
	Registry *sharding.Registry
	// Conn is the NATS connection: relays and groups on the overview,
	// dead letters, the live tail.
	Conn *bus.Conn
	// Writes lets the operator replay and discard dead letters. The
	// browser is read-only without it.
	Writes bool
	// Logger receives what failed while serving a page (nil discards it).
	Logger *slog.Logger
}

// ConfigError names the Config field New refused.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "browser: Config." + e.Field + ": " + e.Reason }

// Browser is the event browser, an http.Handler. Mount it under a path
// of its own with http.StripPrefix; its links are relative to where it is
// mounted.
type Browser struct {
	cfg    Config
	mux    *http.ServeMux
	pages  map[string]*template.Template
	origin *http.CrossOriginProtection
	log    *slog.Logger
	done   chan struct{} // closed by Close: live tails end
	close  sync.Once
}

// New returns a Browser over cfg's stores and NATS connection.
func New(cfg Config) (*Browser, error) {
	switch {
	case cfg.Registry == nil:
		return nil, &ConfigError{Field: "Registry", Reason: "nil: the browser shows a registry's stores"}
	case len(cfg.Registry.Contexts()) == 0:
		return nil, &ConfigError{Field: "Registry", Reason: "holds no store"}
	case cfg.Conn == nil:
		return nil, &ConfigError{Field: "Conn", Reason: "nil: relays, groups, dead letters and the live tail come from NATS"}
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	b := &Browser{cfg: cfg, pages: pages, origin: http.NewCrossOriginProtection(), log: cfg.Logger, done: make(chan struct{})}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.routes()
	return b, nil
}

// Close ends the live tails being served, so that an http.Server's
// Shutdown, which waits for every request, can finish (register it with
// Server.RegisterOnShutdown). Pages are served as before.
func (b *Browser) Close() {
	b.close.Do(func() { close(b.done) })
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// parsePages parses each page with the layout and the shared pieces.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if page == "layout" || page == "parts" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html", n)
		if err != nil {
			return nil, fmt.Errorf("browser: template %s: %w", n, err)
		}
		pages[page] = t
	}
	return pages, nil
}

func (b *Browser) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", b.overview)
	m.HandleFunc("GET /stores/{context}/{$}", b.shards)
	m.HandleFunc("GET /stores/{context}/{shard}/{$}", b.streams)
	m.HandleFunc("GET /stores/{context}/{shard}/streams/{stream}", b.stream)
	m.HandleFunc("GET /stores/{context}/{shard}/events/{id}", b.event)
	m.HandleFunc("GET /events/{id}", b.findEvent)
	m.HandleFunc("GET /chains/{id}", b.chain)
	m.HandleFunc("GET /go", b.search)
	m.HandleFunc("GET /deadletters/{context}/{$}", b.deadLetters)
	m.HandleFunc("GET /deadletters/{context}/{seq}", b.deadLetter)
	m.HandleFunc("POST /deadletters/{context}/{seq}/{action}", b.settle)
	m.HandleFunc("GET /tail/{context}/{$}", b.tailPage)
	m.HandleFunc("GET /tail/{context}/events", b.tail)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.fail(w, r, notFound("no page at %s", r.URL.Path))
	})
	b.mux = m
}

// ServeHTTP serves the browser's pages.
func (b *Browser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	ctx := context.WithValue(r.Context(), tokenKey{}, b.token(w, r))
	if _, chosen := store.RoleFrom(ctx); !chosen && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		ctx = store.WithRole(ctx, store.Reading) // from the stores' replicas, where they have one
	}
	b.mux.ServeHTTP(w, r.WithContext(ctx))
}

// The write forms' CSRF token is the client's own, in a cookie the forms
// repeat (double submit): it holds across replicas and restarts, and a
// page of another site can neither read it nor set it.
const tokenCookie = "sw_browser_token"

type tokenKey struct{}

// token returns the client's token, giving it one when it has none.
func (b *Browser) token(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(tokenCookie); err == nil && len(c.Value) == 64 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	k := make([]byte, 32)
	rand.Read(k) //nolint:errcheck // crypto/rand.Read never fails
	t := hex.EncodeToString(k)
	http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: base(r), HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return t
}

// checkWrite refuses a write the operator did not enable, one from another
// site, and one whose form does not carry the client's token.
func (b *Browser) checkWrite(r *http.Request) error {
	if !b.cfg.Writes {
		return &pageError{Status: http.StatusForbidden, Message: "the browser is read-only: writes are not enabled"}
	}
	if err := b.origin.Check(r); err != nil {
		return &pageError{Status: http.StatusForbidden, Message: "refused: " + err.Error()}
	}
	c, err := r.Cookie(tokenCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(c.Value)) != 1 {
		return &pageError{Status: http.StatusForbidden, Message: "the form's token is missing or stale: reload the page"}
	}
	return nil
}

// page is what every page's template gets.
type page struct {
	Base     string // where the browser is mounted, ending in "/"
	Title    string
	Contexts []string
	Writes   bool
	Token    string
	Data     any
}

// render writes the named page.
func (b *Browser) render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	token, _ := r.Context().Value(tokenKey{}).(string)
	p := page{Base: base(r), Title: title, Contexts: b.cfg.Registry.Contexts(), Writes: b.cfg.Writes, Token: token, Data: data}
	var buf strings.Builder
	if err := b.pages[name].Execute(&buf, p); err != nil {
		b.log.LogAttrs(r.Context(), slog.LevelError, "browser: page failed", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "the page could not be drawn; the log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, buf.String())
}

// base is the path the browser is mounted at, ending in "/": the request's
// path less what the mux saw once http.StripPrefix took the mount off.
func base(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return "/"
	}
	mount, ok := strings.CutSuffix(u.EscapedPath(), r.URL.EscapedPath())
	if !ok {
		mount = ""
	}
	return mount + "/"
}

// pageError is a failure a page shows: its status and what to tell.
type pageError struct {
	Status  int
	Message string
}

func (e *pageError) Error() string { return e.Message }

func notFound(format string, args ...any) error {
	return &pageError{Status: http.StatusNotFound, Message: fmt.Sprintf(format, args...)}
}

// fail shows err as a page: a pageError as it says, a store or NATS out
// of reach as 503, anything else as 502, the details in the log.
func (b *Browser) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		pe     *pageError
		busErr *bus.Error
	)
	switch {
	case errors.As(err, &pe):
	case errors.Is(err, context.Canceled):
		return
	case errors.Is(err, store.ErrInvalid):
		pe = &pageError{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.As(err, &busErr):
		pe = &pageError{Status: http.StatusServiceUnavailable, Message: "out of reach: " + scrub(err.Error())}
	default:
		pe = &pageError{Status: http.StatusBadGateway, Message: scrub(err.Error())}
	}
	if pe.Status >= 500 {
		b.log.LogAttrs(r.Context(), slog.LevelWarn, "browser: page failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	b.render(w, r, pe.Status, "error", http.StatusText(pe.Status), pe)
}

// store returns the store a page's {context} and {shard} name.
func (b *Browser) store(r *http.Request) (store.Store, store.Catalog, error) {
	st, err := b.cfg.Registry.Store(r.PathValue("context"), r.PathValue("shard"))
	if err != nil {
		return nil, nil, notFound("%v", err)
	}
	c, ok := st.(store.Catalog)
	if !ok {
		return nil, nil, notFound("store %s/%s (%T) cannot be browsed: it does not list its contents", st.Context(), st.Shard(), st)
	}
	return st, c, nil
}

// checkContext returns a page's {context}, a context of the registry.
func (b *Browser) checkContext(r *http.Request) (string, error) {
	name := r.PathValue("context")
	if len(b.cfg.Registry.Shards(name)) == 0 {
		return "", notFound("no context %q: the stores are of %s", name, strings.Join(b.cfg.Registry.Contexts(), ", "))
	}
	return name, nil
}

// timeout bounds what one page waits for stores and NATS.
const timeout = 10 * time.Second

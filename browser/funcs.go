package browser

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"html/template"
	"net/url"
	"regexp"
	"time"

	"github.com/google/uuid"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"esc":    url.PathEscape,
	"short":  short,
	"stamp":  func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
	"clock":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	"hue":    hue,
	"pretty": pretty,
	"add":    func(a, b int64) int64 { return a + b },
	"uuid":   func(id uuid.UUID) string { return id.String() },
	"ms":     func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) },
	"scrub":  scrub,
}

// short is the tail of a long id, shown with the whole on hover: event
// ids are UUIDv7, whose heads are the time and alike for a minute's
// events, and whose tails are random. app.js shortens the same way.
func short(id string) string {
	r := []rune(id)
	if len(r) <= 13 {
		return id
	}
	return "…" + string(r[len(r)-8:])
}

// hue gives each context or shard name one of the stylesheet's twelve
// colours (app.js computes the same for the live tail).
func hue(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % 12)
}

// pretty indents JSON data; data that is not JSON comes back as it is.
func pretty(data []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, data, "", "  "); err != nil {
		return string(data)
	}
	return out.String()
}

// Credentials in an error's text: a URL's user and password (up to the
// last '@' before the host: a password may hold one), and a key=value
// DSN's password.
var (
	userinfo = regexp.MustCompile(`(://)[^/\s]*@`)
	password = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)
)

// scrub takes any credentials out of an error's text before a page shows it.
func scrub(s string) string {
	return password.ReplaceAllString(userinfo.ReplaceAllString(s, "${1}…@"), "${1}…")
}

package browser_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/internal/testrun"
)

// chromium returns a context driving a headless Chromium, or skips the
// test when there is none (fails under CI=true). A dialog opening — a
// script of an event's data that ran — fails the test.
func chromium(t *testing.T) context.Context {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no chromium on PATH (apt-get install chromium); CI=true makes this a failure")
		}
		t.Skip("no chromium on PATH (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1440, 1000), chromedp.Flag("lang", "en-US"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser: no timeout on this first call
		t.Fatalf("start %s: %v", path, err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			t.Errorf("a dialog opened: %q: a script of the data ran", d.Message)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// shots is where the test's screenshots go: $SWITCHYARD_SCREENSHOTS, or
// the test's own folder.
func shots(t *testing.T) string {
	if dir := os.Getenv("SWITCHYARD_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// shoot saves a screenshot of the whole page as name.png.
func shoot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// In a real Chromium: the overview, a store's streams, a stream, an event,
// its correlation chain across two contexts and two shards, a dead letter
// replayed with writes enabled and then handled, an event whose data holds
// a script, and the live tail.
func TestInChromium(t *testing.T) {
	d := deploy(t, true)
	ctx := chromium(t)
	dir := shots(t)
	first := d.chainAcross(t)
	d.book(t, "tenant-a", VisitBooked{Visit: "poison", Poison: true}, nil)
	d.waitDeadLetters(t, 1)
	script := d.script(t)
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	value := func(what string, a chromedp.Action[string]) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return s
	}
	text := func(sel string) string { t.Helper(); return value("read "+sel, chromedp.Text(chromedp.CSS(sel))) }
	eval := func(what, js string, out any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js))
		if err == nil {
			err = json.Unmarshal(raw, out)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

	run("overview", chromedp.Navigate(d.url), visible("table.grid"), shoot(dir, "overview"))
	if body := text("main"); !strings.Contains(body, "replica-1") || !strings.Contains(body, "billing") {
		t.Errorf("overview shows neither the replica nor the group:\n%s", body)
	}

	run("a context's shards", click(`header nav a[href="stores/visits/"]`), visible(`a[href="stores/visits/tenant-b/"]`))
	run("a store's streams", click(`a[href="stores/visits/tenant-a/"]`),
		visible(`a[href="stores/visits/tenant-a/streams/Visit-1"]`), shoot(dir, "streams"))
	run("a stream", click(`a[href="stores/visits/tenant-a/streams/Visit-1"]`),
		visible(`a[href="stores/visits/tenant-a/events/`+first.ID.String()+`"]`), shoot(dir, "stream"))
	if when := text("td time"); strings.Contains(when, "UTC") || when == "" {
		t.Errorf("the stream page shows %q: not turned into local time", when)
	}
	run("an event", click(`a[href="stores/visits/tenant-a/events/`+first.ID.String()+`"]`),
		visible("pre.data"), shoot(dir, "event"))
	run("copy an id", click("button.copy"), visible("button.copy.done"))

	run("its chain", click(`a[href="chains/`+first.ID.String()+`"]`),
		visible("ul.tree"), shoot(dir, "chain"))
	var nodes []string
	eval("the tree", `[...document.querySelectorAll("ul.tree .node")].map(n => n.innerText)`, &nodes)
	if len(nodes) != 4 {
		t.Errorf("the tree has %d events, want 4: %q", len(nodes), nodes)
	}
	for _, want := range []string{"visits", "billing", "tenant-a", "tenant-b"} {
		if !strings.Contains(strings.Join(nodes, "\n"), want) {
			t.Errorf("no %s badge in the tree: %q", want, nodes)
		}
	}
	var nested int
	eval("the tree's depth", `document.querySelectorAll("ul.tree ul ul .node").length`, &nested)
	if nested == 0 {
		t.Error("the charge of the second visit is not under it, under the first visit")
	}

	run("dead letters", chromedp.Navigate(d.url+"deadletters/visits/"), visible("td.reason"), shoot(dir, "deadletters"))
	if reason := text("td.reason"); !strings.Contains(reason, "no price list") {
		t.Errorf("the dead letter's reason is %q", reason)
	}
	run("a dead letter", click("tbody td.num a"), visible("button.primary"), shoot(dir, "deadletter"))
	d.poisoned.Store(false) // the cure: replaying now succeeds
	run("replay", click("button.primary"), visible(".notice.ok"))
	d.waitCharged(t, "tenant-a", "poison")
	d.waitDeadLetters(t, 0)
	run("the empty queue", chromedp.Reload(), visible("main p.muted"))
	if s := text("main"); !strings.Contains(s, "No dead letters") {
		t.Errorf("after the replay the list shows:\n%s", s)
	}

	run("the script in data", chromedp.Navigate(d.url+"stores/visits/tenant-a/events/"+script.ID.String()),
		visible("pre.data"), shoot(dir, "script"))
	title, shown := value("the title", chromedp.Title()), text("pre.data")
	if title == "pwned" || !strings.Contains(shown, `<script>alert(`) {
		t.Errorf("title %q, data shown %q: want the markup as text, inert", title, shown)
	}

	run("the live tail", chromedp.Navigate(d.url+"tail/visits/"), visible("#tail tbody tr"))
	live := d.book(t, "tenant-b", VisitBooked{Visit: "live"}, nil)
	run("a live event", visible(`#tail a[href="stores/visits/tenant-b/events/`+live.ID.String()+`"]`), shoot(dir, "tail"))
	t.Logf("screenshots in %s", dir)
}

// waitDeadLetters waits until visits' queue holds n dead letters.
func (d *deployment) waitDeadLetters(t *testing.T, n int) {
	t.Helper()
	testrun.Wait(t, "the dead letters", 30*time.Second, func() bool {
		q, err := deadletter.Open(context.Background(), d.conn, "visits")
		if err != nil {
			return false
		}
		ls, err := q.List(context.Background(), "", 0, 10)
		return err == nil && len(ls) == n
	})
}

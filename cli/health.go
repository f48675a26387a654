package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

var healthCommand = &command{
	max:     0,
	summary: "ask a running process whether it is ready (GET /readyz); exit 0 when it is: a health check for images without a shell",
	setup: func(c *call, fs *flag.FlagSet) func(context.Context, []string) error {
		addr := fs.String("http", c.env("SWITCHYARD_HTTP", ":8080"), "the running process's -http address (env SWITCHYARD_HTTP)")
		path := fs.String("path", "/readyz", "what to ask: /readyz (ready) or /healthz (up)")
		return func(ctx context.Context, _ []string) error { return c.health(ctx, *addr, *path) }
	},
}

// health asks the process at addr for path and fails unless it answers
// 200 within 3 seconds.
func (c *call) health(ctx context.Context, addr, path string) error {
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s: %s", addr, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if c.asJSON {
		_, err = c.stdout.Write(body)
		return err
	}
	fmt.Fprintf(c.stdout, "%s%s: %s\n", addr, path, resp.Status)
	return nil
}

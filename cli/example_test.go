package cli_test

import (
	"context"
	"fmt"
	"os"

	"github.com/switchyard-go/switchyard/cli"
	"github.com/switchyard-go/switchyard/handlers"
)

// A program with one handler group, given a typo: the subcommand stops
// before anything starts, naming what is configured.
func ExampleProgram() {
	g := &handlers.Group{Name: "visits-log", Context: "visits"}
	handlers.HandleMessage(g, "log", "VisitBooked", func(context.Context, handlers.Message) error { return nil })
	p := cli.Program{Name: "visits", Groups: []*handlers.Group{g}}

	dir, _ := os.MkdirTemp("", "cli-example")
	defer os.RemoveAll(dir)
	environ := []string{"SWITCHYARD_DATA_DIR=" + dir, "SWITCHYARD_CONTEXT_VISITS_SHARDS=default,tenant-a"}
	code := p.Run(context.Background(), []string{"tail", "visit"}, environ, os.Stdout, os.Stdout)
	fmt.Println("exit", code)
	// Output:
	// visits tail: no context "visit" is configured (configured: visits)
	// (visits tail -h shows the arguments)
	// exit 2
}

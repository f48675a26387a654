// Command consumer is Switchyard's runtime and operator's tools for the
// configured stores, with no handlers of its own: run relays every
// (context, shard) store — one leader per store across all replicas, the
// others standing by — and migrate, status, dlq, tail, read and health
// operate a deployment. Package cli says what each subcommand does.
//
//	go run ./cmd/consumer -config deploy/switchyard.yaml      # run
//	go run ./cmd/consumer status -config deploy/switchyard.yaml -nats nats://localhost:4222
//
// An application builds the same binary with its handler groups:
// cli.Program{Name: "billing", Groups: groups}.Main().
package main

import "github.com/switchyard-go/switchyard/cli"

func main() {
	cli.Program{Name: "consumer"}.Main()
}

package browser

import (
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
	"github.com/switchyard-go/switchyard/status"
)

// Permissions is what a browser over the contexts needs of its NATS user:
// status's reads, the dead letters', following the streams for the live
// tail, and with writes, replaying and discarding dead letters.
func Permissions(contexts []string, writes bool) bus.Permissions {
	p := status.ReadPermissions(contexts...)
	for _, c := range contexts {
		p = p.Add(bus.TailPermissions(c))
		if writes {
			p = p.Add(deadletter.WritePermissions(c))
		}
	}
	return p
}

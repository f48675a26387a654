package status

import (
	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/bus/deadletter"
)

// Permissions is what Announce needs of its NATS user: writing the
// replica's record in Bucket.
func Permissions() bus.Permissions { return bus.KVWritePermissions(Bucket) }

// ReadPermissions is what Read needs of its NATS user for the contexts:
// their streams' and consumers' info, their dead letters' counts, and the
// replicas' records. Nothing it allows changes anything.
func ReadPermissions(contexts ...string) bus.Permissions {
	p := bus.KVReadPermissions(Bucket)
	for _, c := range contexts {
		s := bus.StreamName(c)
		p = p.Add(bus.Permissions{Publish: []string{"$JS.API.STREAM.INFO." + s, "$JS.API.CONSUMER.LIST." + s}}).
			Add(bus.ConsumerInfoPermissions(c)).Add(deadletter.ReadPermissions(c))
	}
	return p
}

package consumer

import "github.com/switchyard-go/switchyard/bus"

// Permissions is what a replica of group on the source context's stream
// needs of its NATS user: the stream's provisioning, its consumers' (every
// consumer of the stream: a subject cannot tell one group's names from
// another's), pulling and acknowledging, and the group's members bucket.
func Permissions(source, group string) bus.Permissions {
	s := bus.StreamName(source)
	return bus.Permissions{Publish: []string{
		"$JS.API.STREAM.CREATE." + s, "$JS.API.STREAM.INFO." + s,
		"$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.INFO." + s + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".*", "$JS.API.CONSUMER.UNPIN." + s + ".*",
		"$JS.ACK." + s + ".>",
	}}.Add(bus.KVPermissions(MembersBucket(source, group)))
}

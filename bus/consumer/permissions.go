package consumer

import "github.com/switchyard-go/switchyard/bus"

// Permissions is what a replica of group on the source context's stream
// needs of its NATS user: the stream's provisioning, its consumers' (every
// consumer of the stream: a subject cannot tell one group's names from
// another's), pulling and acknowledging, and the group's members bucket.
func Permissions(source, group string) bus.Permissions {
	s := bus.StreamName(source)
	members := MembersBucket(source, group)
	return bus.StreamPermissions(source).
		Add(bus.Permissions{Publish: []string{
			"$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.MSG.NEXT." + s + ".*", "$JS.API.CONSUMER.UNPIN." + s + ".*",
		}}).
		Add(bus.ConsumerInfoPermissions(source)).
		Add(bus.AckPermissions(s)).
		Add(bus.KVWritePermissions(members)).Add(bus.KVReadPermissions(members)).Add(bus.KVListPermissions(members))
}

package deadletter

import "github.com/switchyard-go/switchyard/bus"

// Permissions is what group needs of its NATS user to keep its dead
// letters of the context: the queue's provisioning, putting and parking,
// reading, removing and dropping them.
func Permissions(contextName, group string) bus.Permissions {
	d := StreamName(contextName)
	return bus.Permissions{Publish: []string{
		"$JS.API.STREAM.CREATE." + d, "$JS.API.STREAM.UPDATE." + d,
		"$JS.API.STREAM.MSG.DELETE." + d, "$JS.API.STREAM.PURGE." + d,
		subject(contextName, group), subject(contextName, group) + ".*",
	}}.Add(ReadPermissions(contextName))
}

// ReadPermissions is what listing and reading the context's dead letters
// needs (Open, List, Get, Counts): nothing that changes them.
func ReadPermissions(contextName string) bus.Permissions {
	d := StreamName(contextName)
	return bus.Permissions{}.Add(bus.Permissions{Publish: []string{"$JS.API.STREAM.INFO." + d, "$JS.API.STREAM.MSG.GET." + d}})
}

// WritePermissions is what Replay, Discard and Delete need besides
// reading: Replay and Discard publish a marker on the dead letter's
// original subject, in the context's event stream; Delete removes it.
func WritePermissions(contextName string) bus.Permissions {
	return bus.Permissions{Publish: []string{"sw." + contextName + ".>", "$JS.API.STREAM.MSG.DELETE." + StreamName(contextName)}}.
		Add(ReadPermissions(contextName))
}

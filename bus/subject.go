package bus

import (
	"strconv"
	"strings"

	"github.com/switchyard-go/switchyard/store"
)

// Subject is where an event of stream goes:
// sw.<context>.<shard>.<partition>.<event type>. Names and types are checked
// by the store, so they hold no dots or wildcards.
func Subject(contextName, shard string, partition int, eventType string) string {
	return "sw." + contextName + "." + shard + "." + strconv.Itoa(partition) + "." + eventType
}

// Partition is stream's partition among n: FNV-1a (32 bit) of the stream's
// name, mod n. It never changes, so one stream's events share a partition.
func Partition(stream string, n int) int {
	const offset, prime = 2166136261, 16777619 // hash/fnv's, inlined: no allocation
	h := uint32(offset)
	for i := 0; i < len(stream); i++ {
		h ^= uint32(stream[i])
		h *= prime
	}
	return int(h % uint32(n))
}

// Address is a subject taken apart.
type Address struct {
	Context   string
	Shard     string
	Partition int
	Type      string
}

// ParseSubject takes an event subject apart, checking every part.
func ParseSubject(subject string) (Address, error) {
	bad := func(reason string) (Address, error) {
		return Address{}, &store.InvalidError{Field: "subject", Value: subject, Reason: reason}
	}
	parts := strings.Split(subject, ".")
	if len(parts) != 5 || parts[0] != "sw" {
		return bad("want sw.<context>.<shard>.<partition>.<event type>")
	}
	a := Address{Context: parts[1], Shard: parts[2], Type: parts[4]}
	if err := store.CheckName("context", a.Context); err != nil {
		return bad(err.Error())
	}
	if err := store.CheckName("shard", a.Shard); err != nil {
		return bad(err.Error())
	}
	p, err := strconv.Atoi(parts[3])
	if err != nil || p < 0 || strconv.Itoa(p) != parts[3] {
		return bad("partition " + strconv.Quote(parts[3]) + " is not a number")
	}
	a.Partition = p
	if err := store.CheckType(a.Type); err != nil {
		return bad(err.Error())
	}
	return a, nil
}

// PartitionFilter is the subject filter of one partition of a context's
// events: of every type, or of eventType.
func PartitionFilter(contextName string, partition int, eventType string) string {
	if eventType == "" {
		return "sw." + contextName + ".*." + strconv.Itoa(partition) + ".>"
	}
	return Subject(contextName, "*", partition, eventType)
}

// wakeSubject carries core NATS (not JetStream) wake-ups for the relay of a
// store: a process that commits to a store it does not relay publishes one.
func wakeSubject(contextName, shard string) string {
	return "_sw.wake." + contextName + "." + shard
}

package bus

import (
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Permissions are the NATS subjects a part of Switchyard publishes to and
// subscribes to: what its NATS user must be allowed. Wildcards mean every
// subject they match.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// Add returns p and q together, sorted, each subject once.
func (p Permissions) Add(q Permissions) Permissions {
	merge := func(a, b []string) []string {
		out := slices.Concat(a, b)
		slices.Sort(out)
		return slices.Compact(out)
	}
	return Permissions{Publish: merge(p.Publish, q.Publish), Subscribe: merge(p.Subscribe, q.Subscribe)}
}

// publishing is Permissions to publish to subjects, sorted.
func publishing(subjects ...string) Permissions {
	return Permissions{}.Add(Permissions{Publish: subjects})
}

// UserInfoSubject is where a connection asks the server for its user's
// permissions; a part checks them at start when its user may publish to it.
const UserInfoSubject = "$SYS.REQ.USER.INFO"

// ConnPermissions is what every part needs of its connection: to receive
// replies on the inbox (inboxPrefix, "" for _INBOX) and to ask for its
// user's permissions.
func ConnPermissions(inboxPrefix string) Permissions {
	return Permissions{Publish: []string{UserInfoSubject}, Subscribe: []string{inbox(inboxPrefix) + ".>"}}
}

func inbox(prefix string) string {
	if prefix == "" {
		return strings.TrimSuffix(nats.InboxPrefix, ".")
	}
	return prefix
}

// StreamPermissions is what provisioning the context's stream needs.
func StreamPermissions(contextName string) Permissions {
	s := StreamName(contextName)
	return publishing("$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.INFO."+s)
}

// RelayPermissions is what the relay of one store needs: its stream's
// provisioning, publishing the store's events and their wake-ups, and
// hearing the wake-ups.
func RelayPermissions(contextName, shard string) Permissions {
	wake := wakeSubject(contextName, shard)
	return StreamPermissions(contextName).
		Add(Permissions{Publish: []string{"sw." + contextName + "." + shard + ".>", wake}, Subscribe: []string{wake}})
}

// ForwardPermissions is what Conn.ForwardCommits needs for one store.
func ForwardPermissions(contextName, shard string) Permissions {
	return publishing(wakeSubject(contextName, shard))
}

// AckPermissions is what acknowledging the messages of stream's consumers
// needs, and answering its flow control: the subjects of both reply
// formats (nats-server's js_ack_fc_v2 adds a domain and an account hash).
func AckPermissions(stream string) Permissions {
	return publishing("$JS.ACK."+stream+".>", "$JS.ACK.*.*."+stream+".>", "$JS.FC."+stream+".>", "$JS.FC.*.*."+stream+".>")
}

// KVWritePermissions is what creating the key-value bucket and putting and
// deleting its keys needs.
func KVWritePermissions(bucket string) Permissions {
	s := "KV_" + bucket
	return publishing("$JS.API.INFO", "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s, "$JS.API.STREAM.INFO."+s, "$KV."+bucket+".>")
}

// KVReadPermissions is what opening the key-value bucket and getting its
// keys needs, and listing them from the stream's info: nothing that
// changes it.
func KVReadPermissions(bucket string) Permissions {
	s := "KV_" + bucket
	return publishing("$JS.API.STREAM.INFO."+s, "$JS.API.DIRECT.GET."+s+".>")
}

// KVListPermissions is what listing the bucket's keys with ListKeys needs:
// an ordered consumer of its stream, which asks for flow control.
func KVListPermissions(bucket string) Permissions {
	s := "KV_" + bucket
	return publishing("$JS.API.CONSUMER.CREATE."+s+".>", "$JS.API.CONSUMER.DELETE."+s+".*").Add(AckPermissions(s))
}

// ConsumerInfoPermissions is what reading the info of the context's
// stream's consumers needs.
func ConsumerInfoPermissions(contextName string) Permissions {
	return publishing("$JS.API.CONSUMER.INFO." + StreamName(contextName) + ".*")
}

// TailPermissions is what following the context's stream needs (an
// ordered consumer, as cli's tail and the browser's live tail use):
// creating ephemeral consumers on it, which NATS's permissions cannot
// tell from durable ones.
func TailPermissions(contextName string) Permissions {
	s := StreamName(contextName)
	return publishing("$JS.API.STREAM.INFO."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
		"$JS.API.CONSUMER.MSG.NEXT."+s+".*", "$JS.API.CONSUMER.DELETE."+s+".*").Add(ConsumerInfoPermissions(contextName))
}

// Config renders p as a NATS server configuration's permissions block,
// to put in a user's entry: permissions = { publish = [...] ... }.
func (p Permissions) Config() string {
	list := func(subjects []string) string {
		quoted := make([]string, len(subjects))
		for i, s := range subjects {
			quoted[i] = "    " + strconv.Quote(s)
		}
		return "[\n" + strings.Join(quoted, ",\n") + "\n  ]"
	}
	return "permissions = {\n  publish = " + list(p.Publish) + "\n  subscribe = " + list(p.Subscribe) + "\n}\n"
}

package consumer

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// membership is this process's entry among a group's members; nil when the
// bucket cannot be reached, and then every partition is pulled.
type membership struct {
	kv  jetstream.KeyValue
	key string
}

// MembersBucket is the key-value bucket of the members of group on the
// source context's stream (see the package doc). Names have no capitals,
// so the G cannot be part of either.
func MembersBucket(source, group string) string {
	return "sw_members_" + source + "_G_" + group
}

// join enters this process in the group's members.
func (g *Group) join(ctx context.Context) *membership {
	kv, err := g.conn.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      MembersBucket(g.cfg.Source, g.cfg.Group),
		Description: "Switchyard: replicas of group " + g.cfg.Group + " on " + g.cfg.Source + ", and the partitions each owns",
		TTL:         g.cfg.AckWait,
		History:     1,
		Storage:     jetstream.MemoryStorage,
	})
	if err != nil {
		g.cfg.Logger.WarnContext(ctx, "consumer: members bucket unreachable; pulling every partition", "group", g.cfg.Group, "error", err)
		return nil
	}
	m := &membership{kv: kv, key: nuid.Next()}
	m.publish(ctx, 0)
	return m
}

// publish refreshes this process's entry: it owns owned partitions.
// A failed put is retried at the next balance; meanwhile the entry
// expires and the others count this process out.
func (m *membership) publish(ctx context.Context, owned int) {
	if m != nil {
		_, _ = m.kv.Put(ctx, m.key, []byte(strconv.Itoa(owned)))
	}
}

// others lists how many partitions each other member owns.
func (m *membership) others(ctx context.Context) ([]int, bool) {
	if m == nil {
		return nil, false
	}
	keys, err := m.kv.ListKeys(ctx)
	if err != nil {
		return nil, false
	}
	var out []int
	for key := range keys.Keys() {
		if key == m.key {
			continue
		}
		e, err := m.kv.Get(ctx, key)
		if err != nil {
			continue // gone meanwhile
		}
		n, _ := strconv.Atoi(string(e.Value()))
		out = append(out, n)
	}
	return out, true
}

// leave removes this process from the members, so the others count it out
// at once.
func (m *membership) leave(ctx context.Context) {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = m.kv.Delete(ctx, m.key)
}

// balance gives up partitions beyond this process's share that others
// have room for, and pulls or stops pulling the rest as the shares say.
func (g *Group) balance(ctx context.Context, parts []*partition, m *membership) {
	infos := make([]*jetstream.ConsumerInfo, len(parts))
	mine := make([]bool, len(parts))
	var owned []int
	for i, pt := range parts {
		info, err := pt.jc.Info(ctx)
		if err != nil {
			return // try again next time
		}
		infos[i], mine[i] = info, pt.owns(info)
		if mine[i] {
			owned = append(owned, i)
		}
	}
	m.publish(ctx, len(owned))
	g.owned.Store(&owned)
	others, ok := m.others(ctx)
	if !ok {
		for _, pt := range parts {
			_ = pt.pull(ctx)
		}
		return
	}
	share := (len(parts) + len(others)) / (len(others) + 1) // ⌈P/N⌉
	room := 0
	for _, n := range others {
		room += max(share-n, 0)
	}
	now := time.Now()
	give := min(len(owned)-share, room)
	for j := 0; j < give; j++ {
		i := owned[len(owned)-1-j]
		pt := parts[i]
		mine[i] = false
		pt.stopPulling(true)
		pt.release(ctx)
		pt.resting = now.Add(2 * g.cfg.AckWait / 3)
		g.cfg.Logger.DebugContext(ctx, "consumer: partition given up to a replica with room", "consumer", pt.name, "owned", len(owned), "share", share, "members", len(others)+1)
	}
	have := len(owned) - max(give, 0)
	kept := slices.Clone(owned[:have])
	g.owned.Store(&kept)
	for i, pt := range parts {
		orphan := PinnedTo(infos[i]) == "" && (infos[i].NumPending > 0 || infos[i].NumAckPending > 0)
		var err error
		switch {
		case orphan:
			err = pt.pull(ctx)
		case now.Before(pt.resting):
			pt.stopPulling(true)
		case mine[i] || have < share:
			err = pt.pull(ctx)
		default:
			pt.stopPulling(true)
		}
		if err != nil {
			g.cfg.Logger.WarnContext(ctx, "consumer: pulling failed", "consumer", pt.name, "error", err)
		}
	}
}

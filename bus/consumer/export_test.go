package consumer

import "context"

// TurnsHeld is how many turns of g are taken now (Config.Turns).
func TurnsHeld(g *Group) int {
	if g.turns == nil {
		return 0
	}
	return len(g.turns.slots)
}

// ReleasePartition releases partition p as balance does.
func ReleasePartition(g *Group, p int) {
	g.mu.Lock()
	pt := g.parts[p]
	g.mu.Unlock()
	pt.release(context.Background())
}

package postgres

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// RegisterUUID lets the queries of connections with type map m take a
// uuid.UUID (an event's ID, say) as a parameter as they take a
// pgtype.UUID: in binary, directly. Without it pgx encodes a uuid.UUID
// through its driver.Valuer, as text, after a binary plan that fails
// and formats an error on every call. A store opened from a DSN registers
// it on each connection of its pools; for a pool of your own, call it
// from pgxpool.Config.AfterConnect:
//
//	pcfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
//		postgres.RegisterUUID(c.TypeMap())
//		return nil
//	}
//
// Register it before the connection's first query: plans pgx made before
// stay in its cache.
func RegisterUUID(m *pgtype.Map) {
	m.TryWrapEncodePlanFuncs = append([]pgtype.TryWrapEncodePlanFunc{tryWrapUUID}, m.TryWrapEncodePlanFuncs...)
}

func registerUUID(_ context.Context, c *pgx.Conn) error {
	RegisterUUID(c.TypeMap())
	return nil
}

func tryWrapUUID(value any) (pgtype.WrappedEncodePlanNextSetter, any, bool) {
	if id, ok := value.(uuid.UUID); ok {
		return &uuidPlan{}, pgUUID(id), true
	}
	return nil, nil, false
}

// uuidPlan encodes a uuid.UUID as the pgtype.UUID it wraps.
type uuidPlan struct{ next pgtype.EncodePlan }

func (p *uuidPlan) SetNext(next pgtype.EncodePlan) { p.next = next }

func (p *uuidPlan) Encode(value any, buf []byte) ([]byte, error) {
	return p.next.Encode(pgUUID(value.(uuid.UUID)), buf)
}

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/switchyard-go/switchyard/correlation"
	"github.com/switchyard-go/switchyard/handlers"
	"github.com/switchyard-go/switchyard/sharding"
	"github.com/switchyard-go/switchyard/store"
)

// VisitBooked is the visits context's: a visit was booked.
type VisitBooked struct {
	Visit string `json:"visit"`
}

// InvoiceIssued is the billing context's: a visit was invoiced.
type InvoiceIssued struct {
	Invoice string `json:"invoice"`
	Visit   string `json:"visit"`
	Amount  int    `json:"amount"`
}

// VisitInvoiced is the visits context's record that billing invoiced a
// visit.
type VisitInvoiced struct {
	Visit   string `json:"visit"`
	Invoice string `json:"invoice"`
}

// bookVisit appends a VisitBooked in the visits store of tenant's shard.
func bookVisit(ctx context.Context, reg *sharding.Registry, tenant string) (store.Event, error) {
	shard, err := reg.ShardOf(tenant)
	if err != nil {
		return store.Event{}, err
	}
	visits, err := reg.For(sharding.NewContext(ctx, shard), "visits")
	if err != nil {
		return store.Event{}, err
	}
	ev, err := store.NewEvent("VisitBooked", VisitBooked{Visit: "visit-42"})
	if err != nil {
		return store.Event{}, err
	}
	stored, err := visits.Append(ctx, "Visit-42-"+ev.ID.String(), store.NoStream, ev)
	if err != nil {
		return store.Event{}, err
	}
	return stored[0], nil
}

// billingCharges is the billing context's group: it consumes the visits
// context's events and issues an invoice in billing's own store. It also
// tries, once, to write to visits' store, and hands what refused it to
// refused.
func billingCharges(reg *sharding.Registry, refused chan<- error) *handlers.Group {
	g := &handlers.Group{Name: "billing-charges", Context: "billing", Source: "visits"}
	handlers.Handle(g, "issue-invoice", "VisitBooked", func(ctx context.Context, v VisitBooked, m handlers.Message) error {
		billing, _ := handlers.Store(ctx) // billing's store for the shard, in the handler's transaction
		if visits, err := reg.Store("visits", m.Shard); err == nil {
			ev, _ := store.NewEvent("VisitInvoiced", VisitInvoiced{Visit: v.Visit})
			_, err := visits.Append(ctx, "Visit-sneaky", store.Any, ev)
			if errors.Is(err, store.ErrCrossStore) {
				select {
				case refused <- err:
				default: // told already, on an earlier attempt
				}
			} else {
				return fmt.Errorf("contexts: billing wrote to visits' store: %v", err)
			}
		}
		ev, err := store.NewEvent("InvoiceIssued", InvoiceIssued{Invoice: "inv-" + m.Event.ID.String()[:8], Visit: v.Visit, Amount: 40})
		if err != nil {
			return err
		}
		_, err = billing.Append(ctx, "Invoice-"+m.Event.ID.String(), store.NoStream, ev) // correlation, causation, shard inherited
		return err
	})
	return g
}

// visitsInvoiced is the visits context's group on billing's events: it
// records the invoice in visits' own store and hands the event to done.
func visitsInvoiced(done chan<- handlers.Message) *handlers.Group {
	g := &handlers.Group{Name: "visits-invoiced", Context: "visits", Source: "billing"}
	handlers.Handle(g, "record-invoice", "InvoiceIssued", func(ctx context.Context, inv InvoiceIssued, m handlers.Message) error {
		visits, _ := handlers.Store(ctx)
		ev, err := store.NewEvent("VisitInvoiced", VisitInvoiced{Visit: inv.Visit, Invoice: inv.Invoice})
		if err != nil {
			return err
		}
		stored, err := visits.Append(ctx, "VisitInvoices-"+m.Event.ID.String(), store.NoStream, ev)
		if err != nil {
			return err
		}
		done <- handlers.Message{Event: stored[0], Source: "visits", Shard: m.Shard}
		return nil
	})
	return g
}

// printChain prints the chain from booked to last across both stores.
func printChain(ctx context.Context, reg *sharding.Registry, booked store.Event, last handlers.Message) error {
	billing, err := reg.Store("billing", last.Shard)
	if err != nil {
		return err
	}
	invoices, err := billing.Read(ctx, "Invoice-"+booked.ID.String(), store.Forward, 0, 1)
	if err != nil || len(invoices) != 1 {
		return fmt.Errorf("contexts: the invoice of %s: %d found, %v", booked.ID, len(invoices), err)
	}
	fmt.Printf("chain %s, shard %s\n", booked.Metadata.Get(correlation.CorrelationID), last.Shard)
	for _, e := range []store.Event{booked, invoices[0], last.Event} {
		md := e.Metadata
		fmt.Printf("  %-7s %-13s %s causation=%s data=%s\n", md.Get(correlation.Context), e.Type, e.ID,
			or(md.Get(correlation.CausationID), "-"), e.Data)
	}
	return nil
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

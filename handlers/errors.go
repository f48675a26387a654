package handlers

import (
	"errors"
	"strconv"

	"github.com/switchyard-go/switchyard/bus"
	"github.com/switchyard-go/switchyard/store"
)

// ErrRefused: a message was refused for security — its headers disagree
// with its subject (a forged shard), or its shard is not configured. The
// error is a *SecurityError; the message is dead-lettered untouched.
var ErrRefused = errors.New("message refused")

// SecurityError is a refused message: what was wrong, and with which
// subject.
type SecurityError struct {
	Subject string
	Reason  string
	Err     error
}

func (e *SecurityError) Error() string {
	s := "handlers: refused message on " + strconv.Quote(e.Subject) + ": " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *SecurityError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrRefused) true.
func (e *SecurityError) Is(target error) bool { return target == ErrRefused }

type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

type unavailable struct{ error }

func (u unavailable) Unwrap() error { return u.error }

// Permanent marks err as one that no retry can fix: the message is
// dead-lettered at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Unavailable marks err as a dependency being out of reach (a service
// that is down): the message is tried again for as long as it lasts, each
// wait logged and the partition shown blocked, and never dead-lettered.
// Use it for infrastructure only: an error that retrying the same message
// cannot fix would block its partition for ever.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailable{err}
}

// IsPermanent reports whether err can never succeed on retry: marked with
// Permanent, a refused message, bad input (store.ErrInvalid), or a write
// to another store inside the handler's transaction (store.ErrCrossStore).
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) || errors.Is(err, ErrRefused) || errors.Is(err, store.ErrInvalid) || errors.Is(err, store.ErrCrossStore)
}

// IsUnavailable reports whether err is infrastructure out of reach: marked
// with Unavailable, a store whose database cannot be reached
// (store.ErrUnavailable), or NATS (bus.ErrUnavailable). Permanent errors
// never are.
func IsUnavailable(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	var u unavailable
	return errors.As(err, &u) || errors.Is(err, store.ErrUnavailable) || errors.Is(err, bus.ErrUnavailable)
}

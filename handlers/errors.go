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

type transientErr struct{ error }

func (t transientErr) Unwrap() error   { return t.error }
func (t transientErr) Temporary() bool { return true }

// Permanent marks err as one that no retry can fix: the message is
// dead-lettered at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// Transient marks err as one that trying again later may fix (a service
// that is down): it is retried for as long as it lasts and never
// dead-lettered.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transientErr{err}
}

// IsPermanent reports whether err can never succeed on retry: marked with
// Permanent, a refused message, or bad input (store.ErrInvalid).
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) || errors.Is(err, ErrRefused) || errors.Is(err, store.ErrInvalid)
}

// IsTransient reports whether err is worth retrying for as long as it
// lasts: marked with Transient, or an error in its chain reports
// Temporary() or Timeout() true (a store or NATS that is unreachable), or
// it is bus.ErrUnavailable. Permanent errors never are.
func IsTransient(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	if errors.Is(err, bus.ErrUnavailable) {
		return true
	}
	var tmp interface{ Temporary() bool }
	if errors.As(err, &tmp) && tmp.Temporary() {
		return true
	}
	var to interface{ Timeout() bool }
	return errors.As(err, &to) && to.Timeout()
}

// AttemptsError is an error after some attempts (see Retry).
type AttemptsError struct {
	Attempts int
	Err      error
}

func (e *AttemptsError) Error() string {
	return e.Err.Error() + " (after " + strconv.Itoa(e.Attempts) + " attempts)"
}

// Unwrap returns the last attempt's error.
func (e *AttemptsError) Unwrap() error { return e.Err }

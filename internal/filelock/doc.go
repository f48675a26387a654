// Package filelock takes an exclusive lock on a file, held until released
// or until the process ends (even by kill -9): the SQLite store's relay
// lease and the embedded nats-server's directory use it. Start with
// [Lock].
package filelock

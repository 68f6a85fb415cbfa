// Package store is one profile's persistent state in a bbolt file: contacts,
// every conversation's history and the outbox of messages not yet delivered.
// It also names where profiles live on disk. Every write is one fsynced
// transaction; the file is locked for the life of the Store.
package store

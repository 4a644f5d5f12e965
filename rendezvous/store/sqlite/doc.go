// Package sqlite is the rendezvous.Store backed by a single SQLite file,
// using the pure-Go modernc.org/sqlite driver so the server builds without
// cgo.
//
// The schema is versioned: Open applies, in order and each in its own
// transaction, the migrations the file has not seen yet, and records them in
// the schema_migrations table.
package sqlite

// Package sqlite is the rendezvous server.Store backed by a single SQLite file,
// using the pure-Go modernc.org/sqlite driver so the server builds without
// cgo.
//
// The schema is versioned: Open applies, in order and each in its own
// transaction, the migrations the file has not seen yet, and records them in
// the schema_migrations table. Foreign keys with ON DELETE CASCADE tie
// devices, contact rows, blocks and sessions to their user, and sessions to
// their device and replica, so deleting a user or a replica is one
// statement.
//
// Times are stored as Unix milliseconds, so they come back truncated to the
// millisecond; heartbeat comparisons (Sessions, ReapReplicas) happen at that
// precision too.
//
// One process owns the file: the event bus (Publish, Subscribe) is in
// memory and reaches only the subscribers of the same Store. Deployments
// with several replicas use the postgres package instead.
package sqlite

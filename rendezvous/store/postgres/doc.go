// Package postgres is the rendezvous server.Store backed by PostgreSQL, for
// deployments where several rendezvous replicas share one database. It uses
// github.com/jackc/pgx/v5 with a connection pool.
//
// # Connection URL
//
// Open takes a libpq-style URL:
//
//	postgres://user:password@host:5432/dbname?sslmode=verify-full
//
// (postgresql:// works too, and so do the other parameters pgx accepts,
// for example pool_max_conns=20, connect_timeout=10, or host=/run/postgresql
// for a Unix socket.) The database must exist; Open creates the tables.
//
// # Schema
//
// The schema is versioned: Open applies the migrations the database has not
// seen yet and records them in schema_migrations. It does so in one
// transaction holding a transaction-level advisory lock
// (pg_advisory_xact_lock), so replicas starting together apply each
// migration exactly once, and a failed migration leaves nothing behind. A
// database migrated by a newer build is refused. Foreign keys with ON DELETE
// CASCADE tie devices, contact rows, blocks and sessions to their user, and
// sessions to their device and replica. Times are timestamptz, kept to the
// microsecond. Names sort byte-wise (COLLATE "C") whatever the database's
// collation, as in the SQLite store. Contact changes between two users lock
// both user rows, so crossing requests end accepted. Mailbox deposits,
// device-key changes and revocations lock the user row of the recipient
// (or device owner), so a deposit's quota and device checks hold until it
// commits; acknowledgements lock the messages they touch, so the last
// copy's removal always removes the message.
//
// # Events: LISTEN/NOTIFY
//
// Publish sends the event as a small JSON document (the json tags of
// server.Event) with pg_notify on the channel "parley_events"; the
// payload is far below PostgreSQL's 8000-byte limit (Publish refuses one
// over 7900 bytes with ErrBadRequest). Each Store keeps one dedicated
// connection, outside the pool, that LISTENs on the channel; the first
// Subscribe opens it, and it hands every notification, in the order the
// publishing transactions committed, to all of the Store's subscribers. So
// an event published on any replica reaches every replica, the publisher
// included. Publish does not wait for subscribers; a subscriber that stops
// reading holds up the listener, and so this Store's other subscribers,
// while PostgreSQL queues the notifications.
//
// If that connection breaks (the server restarts, a proxy drops it, an
// administrator terminates the backend), the listener logs it and
// reconnects at once, then with backoff from 100ms up to 5s between
// attempts; subscribers keep their channels. Events published between the
// break and the new LISTEN are missed. The gap is bounded: it lasts while
// the database is unreachable plus at most one backoff step (5s) after it
// is back, and a connection that dies silently is noticed within 35s (the
// listener pings it after 30s without a notification). While the database
// is unreachable the replicas cannot work anyway.
//
// Missing events is acceptable because an event carries no state, only
// "look again": receivers read the current state from the store when they
// act. A missed event delays a push (a contact's presence or contact-book
// change) until the next event about that user or the client's next
// login; nothing stored is lost. The one consequence to know: a missed
// EventKick leaves the kicked session (of a revoked device or deleted
// account) open on its replica until it ends or the replica checks its
// sessions against the store; the store itself no longer lists it, and the
// device cannot log in again.
package postgres

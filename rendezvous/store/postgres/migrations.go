package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations is the schema history. Entry i is version i+1. Append only:
// never edit or reorder an entry that has shipped.
var migrations = []string{
	`CREATE TABLE users (
		id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		name          text        NOT NULL UNIQUE,
		password_hash bytea       NOT NULL,
		created_at    timestamptz NOT NULL,
		last_seen     timestamptz -- NULL = never
	);
	CREATE TABLE devices (
		peer_id     text        PRIMARY KEY,
		user_id     bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		seq         bigint      GENERATED ALWAYS AS IDENTITY, -- enrolment order
		enrolled_at timestamptz NOT NULL,
		revoked_at  timestamptz -- NULL while the device may log in
	);
	CREATE INDEX devices_user_id ON devices(user_id, enrolled_at, seq);
	-- (a, b, 'requested'): a asked for b. Accepted contacts have a row in
	-- each direction with state 'accepted'.
	CREATE TABLE contacts (
		user_id    bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		contact_id bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		state      text        NOT NULL CHECK (state IN ('requested', 'accepted')),
		created_at timestamptz NOT NULL,
		PRIMARY KEY (user_id, contact_id),
		CHECK (user_id <> contact_id)
	);
	CREATE INDEX contacts_contact_id ON contacts(contact_id);
	-- (a, b): a blocks b. Blocking deletes the contact rows between them.
	CREATE TABLE blocks (
		user_id    bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		blocked_id bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		created_at timestamptz NOT NULL,
		PRIMARY KEY (user_id, blocked_id),
		CHECK (user_id <> blocked_id)
	);
	CREATE INDEX blocks_blocked_id ON blocks(blocked_id);
	CREATE TABLE replicas (
		id        text        PRIMARY KEY,
		heartbeat timestamptz NOT NULL
	);
	-- One row per online device. Deleting the device, its user or its
	-- replica deletes the session.
	CREATE TABLE sessions (
		device  text        PRIMARY KEY REFERENCES devices(peer_id) ON DELETE CASCADE,
		user_id bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		replica text        NOT NULL REFERENCES replicas(id) ON DELETE CASCADE,
		addrs   bytea[]     NOT NULL,
		started timestamptz NOT NULL
	);
	CREATE INDEX sessions_user_id ON sessions(user_id);
	CREATE INDEX sessions_replica ON sessions(replica);`,

	// 2: the offline mailbox. The server keeps ciphertext and routing
	// facts only: who sent what message ID to whom, when, and how big.
	`CREATE TABLE device_keys (
		device       text        PRIMARY KEY REFERENCES devices(peer_id) ON DELETE CASCADE,
		signed_key   bytea       NOT NULL, -- as published, signed by the device
		published_at timestamptz NOT NULL
	);
	-- One row per message; gone when its last copy is.
	CREATE TABLE mail (
		id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		recipient_id  bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		sender_id     bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		sender_device text        NOT NULL,
		message_id    text        NOT NULL,
		size          bigint      NOT NULL, -- bytes of ciphertext, all copies
		deposited_at  timestamptz NOT NULL,
		expires_at    timestamptz NOT NULL,
		UNIQUE (recipient_id, sender_id, message_id)
	);
	CREATE INDEX mail_expires_at ON mail(expires_at);
	-- The quota check reads this index only.
	CREATE INDEX mail_recipient_use ON mail(recipient_id, expires_at) INCLUDE (size);
	CREATE INDEX mail_sender_id ON mail(sender_id);
	-- One row per device that has yet to fetch and acknowledge a message.
	CREATE TABLE mail_copies (
		mail_id    bigint NOT NULL REFERENCES mail(id) ON DELETE CASCADE,
		device     text   NOT NULL REFERENCES devices(peer_id) ON DELETE CASCADE,
		ciphertext bytea  NOT NULL,
		PRIMARY KEY (device, mail_id)
	);
	CREATE INDEX mail_copies_mail_id ON mail_copies(mail_id);`,
}

// migrationLock is the pg_advisory_xact_lock key that serializes
// migrations of replicas starting together ("parley" in ASCII, then 1).
const migrationLock int64 = 0x7061726c6579_0001

// migrate applies the migrations the database has not seen, all in one
// transaction under an advisory lock, so that replicas starting together
// apply each migration once and a failed migration leaves nothing behind.
// A database newer than this build is refused.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if current > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this build knows (%d)", current, len(migrations))
		}
		for i := current; i < len(migrations); i++ {
			// Without arguments, Exec uses the simple protocol, which
			// takes several statements.
			if _, err := tx.Exec(ctx, migrations[i]); err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, i+1); err != nil {
				return fmt.Errorf("migration %d: record: %w", i+1, err)
			}
		}
		return nil
	})
}

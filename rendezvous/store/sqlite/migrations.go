package sqlite

// migrations is the schema history. Entry i is version i+1. Append only:
// never edit or reorder an entry that has shipped.
var migrations = []string{
	`CREATE TABLE users (
		id            INTEGER PRIMARY KEY,
		name          TEXT    NOT NULL UNIQUE,
		password_hash BLOB    NOT NULL,
		created_at    INTEGER NOT NULL, -- unix ms
		last_seen     INTEGER           -- unix ms, NULL = never
	);
	CREATE TABLE devices (
		peer_id     TEXT    PRIMARY KEY,
		user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		enrolled_at INTEGER NOT NULL -- unix ms
	);
	CREATE INDEX devices_user_id ON devices(user_id);
	-- (a, b, 'requested'): a asked for b. Accepted contacts have a row in
	-- each direction with state 'accepted'.
	CREATE TABLE contacts (
		user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		contact_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		state      TEXT    NOT NULL CHECK (state IN ('requested', 'accepted')),
		created_at INTEGER NOT NULL, -- unix ms
		PRIMARY KEY (user_id, contact_id)
	);
	CREATE INDEX contacts_contact_id ON contacts(contact_id);`,

	// 2: device revocation, blocks, and live sessions across replicas.
	`ALTER TABLE devices ADD COLUMN revoked_at INTEGER; -- unix ms, NULL while the device may log in
	-- (a, b): a blocks b. Blocking deletes the contact rows between them.
	CREATE TABLE blocks (
		user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		blocked_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		created_at INTEGER NOT NULL, -- unix ms
		PRIMARY KEY (user_id, blocked_id)
	);
	CREATE INDEX blocks_blocked_id ON blocks(blocked_id);
	CREATE TABLE replicas (
		id        TEXT    PRIMARY KEY,
		heartbeat INTEGER NOT NULL -- unix ms
	);
	-- One row per online device. Deleting the device, its user or its
	-- replica deletes the session.
	CREATE TABLE sessions (
		device  TEXT    PRIMARY KEY REFERENCES devices(peer_id) ON DELETE CASCADE,
		user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		replica TEXT    NOT NULL REFERENCES replicas(id) ON DELETE CASCADE,
		addrs   BLOB    NOT NULL, -- each address as uvarint length + bytes
		started INTEGER NOT NULL  -- unix ms
	);
	CREATE INDEX sessions_user_id ON sessions(user_id);
	CREATE INDEX sessions_replica ON sessions(replica);`,

	// 3: the offline mailbox. The server keeps ciphertext and routing
	// facts only: who sent what message ID to whom, when, and how big.
	`CREATE TABLE device_keys (
		device       TEXT    PRIMARY KEY REFERENCES devices(peer_id) ON DELETE CASCADE,
		signed_key   BLOB    NOT NULL, -- as published, signed by the device
		published_at INTEGER NOT NULL  -- unix ms
	);
	-- One row per message; gone when its last copy is.
	CREATE TABLE mail (
		id            INTEGER PRIMARY KEY,
		recipient_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		sender_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
		sender_device TEXT    NOT NULL,
		message_id    TEXT    NOT NULL,
		size          INTEGER NOT NULL, -- bytes of ciphertext, all copies
		deposited_at  INTEGER NOT NULL, -- unix ms
		expires_at    INTEGER NOT NULL, -- unix ms
		UNIQUE (recipient_id, sender_id, message_id)
	);
	CREATE INDEX mail_expires_at ON mail(expires_at);
	-- The quota check reads this index only.
	CREATE INDEX mail_recipient_use ON mail(recipient_id, expires_at, size);
	CREATE INDEX mail_sender_id ON mail(sender_id);
	-- One row per device that has yet to fetch and acknowledge a message.
	CREATE TABLE mail_copies (
		mail_id    INTEGER NOT NULL REFERENCES mail(id) ON DELETE CASCADE,
		device     TEXT    NOT NULL REFERENCES devices(peer_id) ON DELETE CASCADE,
		ciphertext BLOB    NOT NULL,
		PRIMARY KEY (device, mail_id)
	) WITHOUT ROWID;
	CREATE INDEX mail_copies_mail_id ON mail_copies(mail_id);`,
}

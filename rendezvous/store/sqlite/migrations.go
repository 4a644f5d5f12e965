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
}

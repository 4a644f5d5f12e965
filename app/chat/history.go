package chat

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/parleynet/parley/internal/sqlitedb"
)

// Message is a chat message as the client keeps it.
type Message struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Sent     time.Time `json:"sent"`
	Body     string    `json:"body"`
	Incoming bool      `json:"incoming"`
	// Path is how the message travelled: "direct", "holepunched" or
	// "relayed via <supernode>".
	Path string `json:"path"`
}

var historyMigrations = []string{
	`CREATE TABLE messages (
		id          TEXT    PRIMARY KEY,
		contact     TEXT    NOT NULL, -- the other party's username
		sender      TEXT    NOT NULL,
		recipient   TEXT    NOT NULL,
		sent_at     INTEGER NOT NULL, -- unix ms, the sender's clock
		stored_at   INTEGER NOT NULL, -- unix ms, ours
		body        TEXT    NOT NULL,
		incoming    INTEGER NOT NULL,
		path        TEXT    NOT NULL
	);
	CREATE INDEX messages_contact ON messages(contact, stored_at);`,
}

// History is the persisted chat history of one client, in one SQLite file.
type History struct {
	db *sql.DB
}

// OpenHistory opens or creates the history file at path.
func OpenHistory(path string) (*History, error) {
	db, err := sqlitedb.Open(path, historyMigrations)
	if err != nil {
		return nil, fmt.Errorf("open chat history: %w", err)
	}
	return &History{db: db}, nil
}

// Close closes the file.
func (h *History) Close() error { return h.db.Close() }

// Add stores m. It reports false, and changes nothing, if a message with
// the same id is already stored.
func (h *History) Add(ctx context.Context, m Message) (bool, error) {
	contact := m.To
	if m.Incoming {
		contact = m.From
	}
	res, err := h.db.ExecContext(ctx, `INSERT INTO messages
		(id, contact, sender, recipient, sent_at, stored_at, body, incoming, path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		m.ID, contact, m.From, m.To, m.Sent.UnixMilli(), time.Now().UnixMilli(), m.Body, m.Incoming, m.Path)
	if err != nil {
		return false, fmt.Errorf("store message %s: %w", m.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store message %s: %w", m.ID, err)
	}
	return n == 1, nil
}

// With returns the last limit messages exchanged with contact, oldest
// first.
func (h *History) With(ctx context.Context, contact string, limit int) ([]Message, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT id, sender, recipient, sent_at, body, incoming, path
		FROM (SELECT rowid AS seq, * FROM messages WHERE contact = ? ORDER BY stored_at DESC, seq DESC LIMIT ?)
		ORDER BY stored_at, seq`, contact, limit)
	if err != nil {
		return nil, fmt.Errorf("read history with %s: %w", contact, err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var sent int64
		if err := rows.Scan(&m.ID, &m.From, &m.To, &sent, &m.Body, &m.Incoming, &m.Path); err != nil {
			return nil, fmt.Errorf("read history with %s: %w", contact, err)
		}
		m.Sent = time.UnixMilli(sent)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history with %s: %w", contact, err)
	}
	return out, nil
}

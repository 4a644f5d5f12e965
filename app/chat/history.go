package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parleynet/parley/internal/sqlitedb"
)

// State is where a message stands.
type State string

const (
	Received  State = "received"  // incoming, stored and acknowledged
	Delivered State = "delivered" // outgoing, acknowledged by the recipient
	Queued    State = "queued"    // outgoing, waiting in the outbox for the recipient
	Failed    State = "failed"    // outgoing, refused by the recipient; see Error
	// OnServer: outgoing, not delivered yet, and a sealed copy waits in
	// the recipient's mailbox on the rendezvous server. The mailbox sends
	// no receipt: the message stays in the outbox, and turns Delivered
	// only if the recipient acknowledges it over chat (which it does, as
	// a duplicate it drops, if it fetched the mail first).
	OnServer State = "on_server"
)

// Message is a chat message as the client keeps it.
type Message struct {
	ID       string    `json:"id"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Sent     time.Time `json:"sent"`
	Body     string    `json:"body"`
	Incoming bool      `json:"incoming"`
	State    State     `json:"state"`
	Error    string    `json:"error,omitempty"` // why, when Failed
	// Path is how the message travelled: "direct", "holepunched" or
	// "relayed via <supernode>"; empty while queued.
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
		state       TEXT    NOT NULL CHECK (state IN ('received', 'delivered', 'queued', 'failed')),
		error       TEXT    NOT NULL DEFAULT '',
		path        TEXT    NOT NULL
	);
	CREATE INDEX messages_contact ON messages(contact, stored_at);
	CREATE INDEX messages_outbox ON messages(contact, stored_at) WHERE state = 'queued';`,
	// on_server: a queued message deposited in the recipient's mailbox
	// (shown as OnServer; its state stays 'queued', so it stays in the
	// outbox).
	`ALTER TABLE messages ADD COLUMN on_server INTEGER NOT NULL DEFAULT 0;`,
}

// History is the persisted chat history and outbox of one client, in one
// SQLite file.
type History struct {
	db *sql.DB
}

// OpenHistory opens or creates the history file at path. The file is
// readable by its owner only (mode 0600), and so are SQLite's -wal and
// -shm files beside it, whatever the umask (see sqlitedb.Open).
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
	res, err := h.db.ExecContext(ctx, insertMessage, insertArgs(m, time.Now().UnixMilli())...)
	if err != nil {
		return false, fmt.Errorf("store message %s: %w", m.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store message %s: %w", m.ID, err)
	}
	return n == 1, nil
}

// AddAll stores ms in one transaction, in order (one commit for a burst:
// what makes thousands of messages a second possible). fresh[i] is false
// for a message whose id was already stored (it is left unchanged). On
// error nothing is stored.
func (h *History) AddAll(ctx context.Context, ms []Message) (fresh []bool, err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store %d messages: %w", len(ms), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, insertMessage)
	if err != nil {
		return nil, fmt.Errorf("store %d messages: %w", len(ms), err)
	}
	defer stmt.Close()
	now := time.Now().UnixMilli()
	fresh = make([]bool, len(ms))
	for i, m := range ms {
		res, err := stmt.ExecContext(ctx, insertArgs(m, now)...)
		if err != nil {
			return nil, fmt.Errorf("store message %s: %w", m.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("store message %s: %w", m.ID, err)
		}
		fresh[i] = n == 1
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store %d messages: %w", len(ms), err)
	}
	return fresh, nil
}

const insertMessage = `INSERT INTO messages
		(id, contact, sender, recipient, sent_at, stored_at, body, incoming, state, error, path)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

func insertArgs(m Message, storedAt int64) []any {
	contact := m.To
	if m.Incoming {
		contact = m.From
	}
	return []any{m.ID, contact, m.From, m.To, m.Sent.UnixMilli(), storedAt, m.Body, m.Incoming, m.State, m.Error, m.Path}
}

// settleAll records the outcomes of several queued messages (each
// Delivered with its path or Failed with its error) in one transaction.
// A message no longer queued is skipped, not an error: it was settled
// already.
func (h *History) settleAll(ctx context.Context, ms []Message) (err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("settle %d messages: %w", len(ms), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	stmt, err := tx.PrepareContext(ctx, settleMessage)
	if err != nil {
		return fmt.Errorf("settle %d messages: %w", len(ms), err)
	}
	defer stmt.Close()
	for _, m := range ms {
		if _, err := stmt.ExecContext(ctx, m.State, m.Path, m.Error, m.ID); err != nil {
			return fmt.Errorf("update message %s: %w", m.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("settle %d messages: %w", len(ms), err)
	}
	return nil
}

const settleMessage = `UPDATE messages SET state = ?, path = ?, error = ?
		WHERE id = ? AND state = 'queued'`

var errNotQueued = errors.New("message is not in the outbox")

// settle records the outcome of delivering a queued message: Delivered with
// its path, or Failed with the recipient's reason.
func (h *History) settle(ctx context.Context, id string, state State, path, reason string) error {
	res, err := h.db.ExecContext(ctx, settleMessage, state, path, reason, id)
	if err != nil {
		return fmt.Errorf("update message %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update message %s: %w", id, errNotQueued)
	}
	return nil
}

// messageColumns are the columns query scans, in its order. A queued
// message deposited in the mailbox shows as OnServer.
const messageColumns = `id, sender, recipient, sent_at, body, incoming,
	CASE WHEN state = 'queued' AND on_server THEN 'on_server' ELSE state END, error, path`

// With returns the last limit messages exchanged with contact, oldest
// first.
func (h *History) With(ctx context.Context, contact string, limit int) ([]Message, error) {
	return h.query(ctx, `SELECT `+messageColumns+`
		FROM (SELECT rowid AS seq, * FROM messages WHERE contact = ? ORDER BY stored_at DESC, seq DESC LIMIT ?)
		ORDER BY stored_at, seq`, contact, limit)
}

// Outbox returns the messages queued for contact, oldest first.
func (h *History) Outbox(ctx context.Context, contact string) ([]Message, error) {
	return h.query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE contact = ? AND state = 'queued' ORDER BY stored_at, rowid`, contact)
}

// Undeposited returns the messages queued for contact that are not in
// its mailbox yet, oldest first.
func (h *History) Undeposited(ctx context.Context, contact string) ([]Message, error) {
	return h.query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE contact = ? AND state = 'queued' AND NOT on_server ORDER BY stored_at, rowid`, contact)
}

// MarkOnServer records that a sealed copy of the queued message id waits
// in the recipient's mailbox. It reports false, changing nothing, if the
// message is no longer queued (delivered meanwhile) or already marked.
func (h *History) MarkOnServer(ctx context.Context, id string) (bool, error) {
	res, err := h.db.ExecContext(ctx, `UPDATE messages SET on_server = 1
		WHERE id = ? AND state = 'queued' AND NOT on_server`, id)
	if err != nil {
		return false, fmt.Errorf("mark message %s on server: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("mark message %s on server: %w", id, err)
	}
	return n == 1, nil
}

// FailQueued records that the queued message id can never be delivered,
// for reason. It reports false if the message is no longer queued.
func (h *History) FailQueued(ctx context.Context, id, reason string) (bool, error) {
	err := h.settle(ctx, id, Failed, "", reason)
	if errors.Is(err, errNotQueued) {
		return false, nil
	}
	return err == nil, err
}

// OutboxContacts returns the contacts with queued messages.
func (h *History) OutboxContacts(ctx context.Context) ([]string, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT DISTINCT contact FROM messages WHERE state = 'queued' ORDER BY contact`)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (h *History) query(ctx context.Context, q string, args ...any) ([]Message, error) {
	rows, err := h.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var sent int64
		if err := rows.Scan(&m.ID, &m.From, &m.To, &sent, &m.Body, &m.Incoming, &m.State, &m.Error, &m.Path); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		m.Sent = time.UnixMilli(sent)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return out, nil
}

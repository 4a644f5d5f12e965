package chat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
	// Sent: outgoing, not delivered yet, and out of this device's hands:
	// a sealed copy waits in the recipient's mailbox on the rendezvous
	// server (the outbox keeps trying directly meanwhile), or it is a
	// copy of a message another device of the user sent. A delivery
	// receipt turns it Delivered.
	Sent State = "sent"
	// Read: outgoing, the recipient read it on one of their devices; or
	// incoming, read on one of this user's devices.
	Read State = "read"
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
	// Transport is what the connection of the message's stream ran on
	// ("tcp", "quic"; for a relayed one, the hop to the supernode); empty
	// with Path, and for copies another device reported.
	Transport string `json:"transport,omitempty"`
	// DeliveredTo is the recipient's device that acknowledged an outgoing
	// message directly: its other devices get a copy through the mailbox.
	DeliveredTo string `json:"-"`
	// Copy: an outgoing message another device of this user sent (a sent
	// copy), or an incoming copy that reached another device of this
	// user directly. No copies or receipts are owed for it.
	Copy bool `json:"-"`
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
	// Every device of a user: the state 'sent' (a copy of a message
	// another device sent), read state, the copies still owed to the
	// users' other devices, the device that acknowledged, receipts, and
	// the order every device agrees on (the sender's clock, then the id).
	`CREATE TABLE messages_v3 (
		id           TEXT    PRIMARY KEY,
		contact      TEXT    NOT NULL,
		sender       TEXT    NOT NULL,
		recipient    TEXT    NOT NULL,
		sent_at      INTEGER NOT NULL,
		stored_at    INTEGER NOT NULL,
		body         TEXT    NOT NULL,
		incoming     INTEGER NOT NULL,
		state        TEXT    NOT NULL CHECK (state IN ('received', 'delivered', 'queued', 'failed', 'sent')),
		error        TEXT    NOT NULL DEFAULT '',
		path         TEXT    NOT NULL,
		on_server    INTEGER NOT NULL DEFAULT 0,
		read         INTEGER NOT NULL DEFAULT 0, -- incoming: read on this user's devices
		copies       INTEGER NOT NULL DEFAULT 0, -- copies for the users' other devices to deposit now
		delivered_to TEXT    NOT NULL DEFAULT '' -- the device that acknowledged it directly
	);
	INSERT INTO messages_v3 (id, contact, sender, recipient, sent_at, stored_at, body, incoming, state, error, path, on_server)
		SELECT id, contact, sender, recipient, sent_at, stored_at, body, incoming, state, error, path, on_server FROM messages;
	DROP TABLE messages;
	ALTER TABLE messages_v3 RENAME TO messages;
	CREATE INDEX messages_order ON messages(contact, sent_at, id);
	CREATE INDEX messages_outbox ON messages(contact, stored_at) WHERE state = 'queued';
	CREATE INDEX messages_unread ON messages(contact) WHERE incoming AND NOT read;
	CREATE INDEX messages_copies ON messages(stored_at) WHERE copies;
	-- Receipts from a message's recipient (author): 1 delivered, 2 read.
	-- Kept even before the message itself arrives (a sent copy can come
	-- after its receipt).
	CREATE TABLE receipts (
		message_id TEXT    NOT NULL,
		author     TEXT    NOT NULL,
		kind       INTEGER NOT NULL CHECK (kind IN (1, 2)),
		PRIMARY KEY (message_id, author)
	) WITHOUT ROWID;
	-- Receipts this device owes: to the contact (and, for read, to this
	-- user's other devices), deposited by the mailbox.
	CREATE TABLE receipts_out (
		seq     INTEGER PRIMARY KEY AUTOINCREMENT,
		contact TEXT    NOT NULL,
		kind    INTEGER NOT NULL CHECK (kind IN (1, 2)),
		ids     TEXT    NOT NULL, -- space-separated message ids
		skip    TEXT    NOT NULL DEFAULT '' -- a device of contact that needs none (the sender of a direct message)
	);`,
	// The transport of the message's connection ("tcp", "quic"), beside
	// its path.
	`ALTER TABLE messages ADD COLUMN transport TEXT NOT NULL DEFAULT '';`,
}

// History is the persisted chat history and outbox of one client, in one
// SQLite file.
type History struct {
	db *sqlitedb.DB
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
	return h.addAll(ctx, ms, "")
}

// AddReceived stores incoming messages as AddAll does and, in the same
// transaction, owes their sender's other devices a delivery receipt for
// the new ones that are not copies: device, the sender's device they came
// from directly, needs none.
func (h *History) AddReceived(ctx context.Context, ms []Message, device string) (fresh []bool, err error) {
	return h.addAll(ctx, ms, device)
}

func (h *History) addAll(ctx context.Context, ms []Message, oweFrom string) (fresh []bool, err error) {
	err = h.inTx(ctx, fmt.Sprintf("store %d messages", len(ms)), func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, insertMessage)
		if err != nil {
			return err
		}
		defer stmt.Close()
		now := time.Now().UnixMilli()
		fresh = make([]bool, len(ms))
		owed := make(map[string][]string) // sender → ids
		for i, m := range ms {
			res, err := stmt.ExecContext(ctx, insertArgs(m, now)...)
			if err != nil {
				return fmt.Errorf("store message %s: %w", m.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("store message %s: %w", m.ID, err)
			}
			fresh[i] = n == 1
			if fresh[i] && oweFrom != "" && m.Incoming && !m.Copy {
				owed[m.From] = append(owed[m.From], m.ID)
			}
		}
		for from, ids := range owed {
			for chunk := range slices.Chunk(ids, MaxReceiptIDs) {
				if err := owe(ctx, tx, from, ReceiptDelivered, chunk, oweFrom); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

const insertMessage = `INSERT INTO messages
		(id, contact, sender, recipient, sent_at, stored_at, body, incoming, state, error, path, transport)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

func insertArgs(m Message, storedAt int64) []any {
	contact := m.To
	if m.Incoming {
		contact = m.From
	}
	return []any{m.ID, contact, m.From, m.To, m.Sent.UnixMilli(), storedAt, m.Body, m.Incoming, m.State, m.Error, m.Path, m.Transport}
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
		if _, err := stmt.ExecContext(ctx, m.State, m.Path, m.Error, m.DeliveredTo, m.ID, m.Transport); err != nil {
			return fmt.Errorf("update message %s: %w", m.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("settle %d messages: %w", len(ms), err)
	}
	return nil
}

// A message this device sent owes copies to the other devices of both
// users once its first delivery attempt is over: it was delivered (here),
// or deposited in the recipient's mailbox (MarkOnServer).
const settleMessage = `UPDATE messages SET state = ?1, path = ?2, error = ?3, delivered_to = ?4,
		transport = ?6, copies = (?1 = 'delivered')
		WHERE id = ?5 AND state = 'queued'`

var errNotQueued = errors.New("message is not in the outbox")

// settle records the outcome of delivering a queued message: Delivered with
// its path, or Failed with the recipient's reason.
func (h *History) settle(ctx context.Context, id string, state State, path, reason string) error {
	res, err := h.db.ExecContext(ctx, settleMessage, state, path, reason, "", id, "")
	if err != nil {
		return fmt.Errorf("update message %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update message %s: %w", id, errNotQueued)
	}
	return nil
}

// messageColumns are the columns query scans, in its order, for a
// messages row m. The state shown is the row's, raised by the receipts of
// its recipient: an incoming message is Read once read on any of this
// user's devices; an outgoing one is Delivered or Read by the receipts
// of the contact; a queued one with a copy in the mailbox is Sent.
const messageColumns = `m.id, m.sender, m.recipient, m.sent_at, m.body, m.incoming,
	CASE
		WHEN m.incoming THEN CASE WHEN m.read OR COALESCE(r.kind, 0) = 2 THEN 'read' ELSE 'received' END
		WHEN m.state = 'failed' THEN 'failed'
		WHEN r.kind = 2 THEN 'read'
		WHEN m.state = 'delivered' OR r.kind = 1 THEN 'delivered'
		WHEN m.state = 'queued' AND m.on_server THEN 'sent'
		ELSE m.state
	END, m.error, m.path, m.delivered_to, m.state = 'sent', m.transport`

// fromMessages is the FROM clause messageColumns reads: a message with the
// receipt of its recipient.
const fromMessages = ` FROM messages m LEFT JOIN receipts r ON r.message_id = m.id AND r.author = m.recipient `

// With returns the last limit messages exchanged with contact, in the
// order every device of the user shows them: the sender's clock, then the
// id (which a device makes increasing). If before is not empty, they are
// the last limit before that message (paging back).
func (h *History) With(ctx context.Context, contact string, limit int, before string) ([]Message, error) {
	if before == "" {
		return h.query(ctx, `SELECT * FROM (SELECT `+messageColumns+fromMessages+`
			WHERE m.contact = ? ORDER BY m.sent_at DESC, m.id DESC LIMIT ?)
			ORDER BY 4, 1`, contact, limit)
	}
	return h.query(ctx, `SELECT * FROM (SELECT `+messageColumns+fromMessages+`
		WHERE m.contact = ? AND (m.sent_at, m.id) < (SELECT sent_at, id FROM messages WHERE id = ? AND contact = ?)
		ORDER BY m.sent_at DESC, m.id DESC LIMIT ?)
		ORDER BY 4, 1`, contact, before, contact, limit)
}

// Outbox returns the messages queued for contact, oldest first.
func (h *History) Outbox(ctx context.Context, contact string) ([]Message, error) {
	return h.query(ctx, `SELECT `+messageColumns+fromMessages+`
		WHERE m.contact = ? AND m.state = 'queued' ORDER BY m.stored_at, m.rowid`, contact)
}

// Undeposited returns the messages queued for contact that are not in
// its mailbox yet, oldest first.
func (h *History) Undeposited(ctx context.Context, contact string) ([]Message, error) {
	return h.query(ctx, `SELECT `+messageColumns+fromMessages+`
		WHERE m.contact = ? AND m.state = 'queued' AND NOT m.on_server ORDER BY m.stored_at, m.rowid`, contact)
}

// MarkOnServer records that a sealed copy of the queued message id waits
// in the recipient's mailbox. It reports false, changing nothing, if the
// message is no longer queued (delivered meanwhile) or already marked.
func (h *History) MarkOnServer(ctx context.Context, id string) (bool, error) {
	res, err := h.db.ExecContext(ctx, `UPDATE messages SET on_server = 1, copies = 1
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
		if err := rows.Scan(&m.ID, &m.From, &m.To, &sent, &m.Body, &m.Incoming, &m.State, &m.Error, &m.Path, &m.DeliveredTo, &m.Copy, &m.Transport); err != nil {
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

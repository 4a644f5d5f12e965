package chat

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// What the history keeps so that every device of a user shows the same
// conversations: read state, receipts (from a message's recipient, and
// those this device owes) and the copies owed to the users' other devices.
// The offline mailbox carries receipts and copies (see app/mailbox.go).

// ReceiptKind is what a receipt says of its messages.
type ReceiptKind int

const (
	ReceiptDelivered ReceiptKind = 1 // they reached a device of the recipient
	ReceiptRead      ReceiptKind = 2 // they were read on a device of the recipient
)

// MaxReceiptIDs is how many messages one receipt names.
const MaxReceiptIDs = 256

// OwedReceipt is a receipt this device must deposit: to Contact's
// devices but Skip, and a read receipt also to this user's other devices.
type OwedReceipt struct {
	Seq     int64
	Contact string
	Kind    ReceiptKind
	IDs     []string
	Skip    string // a device of Contact that needs none: the messages came from it directly
}

// Conversation is the summary of the messages with one contact.
type Conversation struct {
	Contact string
	Unread  int      // incoming messages not read on any device of the user
	Last    *Message // the newest message, in history order
}

// inTx runs f in a transaction.
func (h *History) inTx(ctx context.Context, what string, f func(*sql.Tx) error) error {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// unreadWhere selects the unread incoming messages of a contact (the
// receipt join of fromMessages gives read on another device).
const unreadWhere = ` WHERE m.contact = ? AND m.incoming AND NOT m.read AND COALESCE(r.kind, 0) != 2`

// MarkRead marks every unread message from contact read, and owes one
// read receipt for them (to contact's devices and this user's other
// devices). It returns the ids it marked, in history order.
func (h *History) MarkRead(ctx context.Context, contact string) ([]string, error) {
	var ids []string
	err := h.inTx(ctx, "mark messages from "+contact+" read", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT m.id`+fromMessages+unreadWhere+` ORDER BY m.sent_at, m.id`, contact)
		if err != nil {
			return err
		}
		ids, err = scanStrings(rows)
		if err != nil {
			return err
		}
		for chunk := range slices.Chunk(ids, MaxReceiptIDs) {
			if _, err := tx.ExecContext(ctx, `UPDATE messages SET read = 1 WHERE id IN (`+placeholders(len(chunk))+`)`, anys(chunk)...); err != nil {
				return err
			}
			if err := owe(ctx, tx, contact, ReceiptRead, chunk, ""); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// OweDelivered records that contact's devices must learn that the
// messages ids reached this device (they came through the mailbox, so
// the sender has no acknowledgement).
func (h *History) OweDelivered(ctx context.Context, contact string, ids []string) error {
	return h.inTx(ctx, "owe delivery receipts", func(tx *sql.Tx) error {
		for chunk := range slices.Chunk(ids, MaxReceiptIDs) {
			if err := owe(ctx, tx, contact, ReceiptDelivered, chunk, ""); err != nil {
				return err
			}
		}
		return nil
	})
}

func owe(ctx context.Context, tx *sql.Tx, contact string, kind ReceiptKind, ids []string, skip string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO receipts_out (contact, kind, ids, skip) VALUES (?, ?, ?, ?)`, contact, kind, strings.Join(ids, " "), skip)
	return err
}

// OwedReceipts returns up to limit receipts this device owes, oldest
// first.
func (h *History) OwedReceipts(ctx context.Context, limit int) ([]OwedReceipt, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT seq, contact, kind, ids, skip FROM receipts_out ORDER BY seq LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read owed receipts: %w", err)
	}
	defer rows.Close()
	var out []OwedReceipt
	for rows.Next() {
		var r OwedReceipt
		var ids string
		if err := rows.Scan(&r.Seq, &r.Contact, &r.Kind, &ids, &r.Skip); err != nil {
			return nil, fmt.Errorf("read owed receipts: %w", err)
		}
		r.IDs = strings.Fields(ids)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read owed receipts: %w", err)
	}
	return out, nil
}

// ReceiptsSent forgets owed receipts: they were deposited (or can never
// be).
func (h *History) ReceiptsSent(ctx context.Context, seqs ...int64) error {
	for chunk := range slices.Chunk(seqs, MaxReceiptIDs) {
		if _, err := h.db.ExecContext(ctx, `DELETE FROM receipts_out WHERE seq IN (`+placeholders(len(chunk))+`)`, anys(chunk)...); err != nil {
			return fmt.Errorf("forget %d receipts: %w", len(chunk), err)
		}
	}
	return nil
}

// ApplyReceipt records a receipt author sent for ids; me is this user.
// A receipt counts only for messages whose recipient is its author: a
// contact's for the messages this user sent them, this user's own (from
// another of its devices) for the messages it received. A receipt for a
// message not here yet is kept for when it comes. A delivery or read
// receipt settles a message still queued for author (it came through
// the mailbox). It returns the messages here whose state changed, as
// they are now.
func (h *History) ApplyReceipt(ctx context.Context, me, author string, kind ReceiptKind, ids []string) ([]Message, error) {
	if kind != ReceiptDelivered && kind != ReceiptRead {
		return nil, fmt.Errorf("apply receipt: unknown kind %d", kind)
	}
	var changed []string
	err := h.inTx(ctx, "apply receipt from "+author, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `INSERT INTO receipts (message_id, author, kind) VALUES (?, ?, ?)
				ON CONFLICT (message_id, author) DO UPDATE SET kind = excluded.kind WHERE excluded.kind > kind`, id, author, kind)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue // known already
			}
			if author != me {
				if _, err := tx.ExecContext(ctx, `UPDATE messages SET state = 'delivered', path = CASE WHEN path = '' THEN ? ELSE path END
					WHERE id = ? AND recipient = ? AND state IN ('queued', 'sent') AND NOT incoming`, MailboxPath, id, author); err != nil {
					return err
				}
			}
			changed = append(changed, id)
		}
		return nil
	})
	if err != nil || len(changed) == 0 {
		return nil, err
	}
	return h.byIDs(ctx, author, changed)
}

// MailboxPath is the path of a message that went through the offline
// mailbox: an incoming one fetched from it, or an outgoing one whose
// delivery receipt came through it.
const MailboxPath = "mailbox"

// byIDs returns the messages with the given ids whose recipient is
// recipient.
func (h *History) byIDs(ctx context.Context, recipient string, ids []string) ([]Message, error) {
	var out []Message
	for chunk := range slices.Chunk(ids, MaxReceiptIDs) {
		ms, err := h.query(ctx, `SELECT `+messageColumns+fromMessages+`
			WHERE m.recipient = ? AND m.id IN (`+placeholders(len(chunk))+`) ORDER BY m.sent_at, m.id`, append([]any{recipient}, anys(chunk)...)...)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

// Unread counts the messages from contact not read on any device of the
// user.
func (h *History) Unread(ctx context.Context, contact string) (int, error) {
	var n int
	if err := h.db.QueryRowContext(ctx, `SELECT COUNT(*)`+fromMessages+unreadWhere, contact).Scan(&n); err != nil {
		return 0, fmt.Errorf("count unread messages from %s: %w", contact, err)
	}
	return n, nil
}

// Conversations returns a summary of each conversation, the one with the
// newest message first.
func (h *History) Conversations(ctx context.Context) ([]Conversation, error) {
	rows, err := h.db.QueryContext(ctx, `SELECT DISTINCT contact FROM messages`)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	contacts, err := scanStrings(rows)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	out := make([]Conversation, 0, len(contacts))
	for _, c := range contacts {
		last, err := h.With(ctx, c, 1, "")
		if err != nil {
			return nil, err
		}
		n, err := h.Unread(ctx, c)
		if err != nil {
			return nil, err
		}
		if len(last) == 1 {
			out = append(out, Conversation{Contact: c, Unread: n, Last: &last[0]})
		}
	}
	// Newest last message first (every conversation has one).
	slices.SortFunc(out, func(a, b Conversation) int {
		if c := b.Last.Sent.Compare(a.Last.Sent); c != 0 {
			return c
		}
		return cmp.Compare(a.Contact, b.Contact)
	})
	return out, nil
}

// OwedCopies returns up to limit messages this device sent whose first
// delivery attempt is over (delivered directly, or deposited in the
// recipient's mailbox) and whose copies for the users' other devices are
// not deposited yet, oldest first.
func (h *History) OwedCopies(ctx context.Context, limit int) ([]Message, error) {
	return h.query(ctx, `SELECT `+messageColumns+fromMessages+`
		WHERE m.copies ORDER BY m.stored_at, m.rowid LIMIT ?`, limit)
}

// CopiesSent records that the copies of the messages ids are deposited
// (or need none).
func (h *History) CopiesSent(ctx context.Context, ids ...string) error {
	for chunk := range slices.Chunk(ids, MaxReceiptIDs) {
		if _, err := h.db.ExecContext(ctx, `UPDATE messages SET copies = 0 WHERE id IN (`+placeholders(len(chunk))+`)`, anys(chunk)...); err != nil {
			return fmt.Errorf("record copies of %d messages: %w", len(chunk), err)
		}
	}
	return nil
}

func scanStrings(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// anys is s as query arguments.
func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

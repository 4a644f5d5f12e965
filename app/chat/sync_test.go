package chat

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/sqlitedb"
)

func openTestHistory(t *testing.T) *History {
	t.Helper()
	h, err := OpenHistory(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func mustAdd(t *testing.T, h *History, ms ...Message) {
	t.Helper()
	if _, err := h.AddAll(context.Background(), ms); err != nil {
		t.Fatal(err)
	}
}

func states(ms []Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID+":"+string(m.State))
	}
	return out
}

// Read on this device: the unread count drops to zero, one read receipt
// is owed for exactly the messages marked, and marking again owes nothing.
func TestMarkReadOwesOneReceipt(t *testing.T) {
	ctx := context.Background()
	h := openTestHistory(t)
	t0 := time.UnixMilli(1_000_000)
	in := func(id string, at int64) Message {
		return Message{ID: id, From: "bob", To: "alice", Sent: t0.Add(time.Duration(at) * time.Millisecond), Body: id, Incoming: true, State: Received, Path: "direct"}
	}
	mustAdd(t, h, in("b2", 2), in("b1", 1), in("b3", 3),
		Message{ID: "a1", From: "alice", To: "bob", Sent: t0, Body: "mine", State: Delivered})
	mustAdd(t, h, Message{ID: "c1", From: "carol", To: "alice", Sent: t0, Body: "c", Incoming: true, State: Received})
	if n, err := h.Unread(ctx, "bob"); err != nil || n != 3 {
		t.Fatalf("unread from bob: %d, %v; want 3", n, err)
	}
	ids, err := h.MarkRead(ctx, "bob")
	if err != nil || !slices.Equal(ids, []string{"b1", "b2", "b3"}) {
		t.Fatalf("MarkRead: %v, %v; want b1 b2 b3 in order", ids, err)
	}
	if n, _ := h.Unread(ctx, "bob"); n != 0 {
		t.Errorf("unread from bob after reading: %d", n)
	}
	if n, _ := h.Unread(ctx, "carol"); n != 1 {
		t.Errorf("unread from carol: %d, want 1 (untouched)", n)
	}
	owed, err := h.OwedReceipts(ctx, 10)
	if err != nil || len(owed) != 1 || owed[0].Contact != "bob" || owed[0].Kind != ReceiptRead || !slices.Equal(owed[0].IDs, ids) {
		t.Fatalf("owed receipts: %+v, %v; want one read receipt to bob for %v", owed, err, ids)
	}
	if again, _ := h.MarkRead(ctx, "bob"); len(again) != 0 {
		t.Errorf("MarkRead again marked %v", again)
	}
	if err := h.ReceiptsSent(ctx, owed[0].Seq); err != nil {
		t.Fatal(err)
	}
	if owed, _ := h.OwedReceipts(ctx, 10); len(owed) != 0 {
		t.Errorf("owed after sending: %+v", owed)
	}
	convs, err := h.Conversations(ctx)
	if err != nil || len(convs) != 2 {
		t.Fatalf("conversations: %+v, %v", convs, err)
	}
	if c := convs[0]; c.Contact != "bob" || c.Unread != 0 || c.Last.ID != "b3" || c.Last.State != Read {
		t.Errorf("bob's conversation: %+v (last %+v), want 0 unread, last b3 read", c, c.Last)
	}
	if c := convs[1]; c.Contact != "carol" || c.Unread != 1 {
		t.Errorf("carol's conversation: %+v, want 1 unread", c)
	}
}

// Receipts count only from a message's recipient; a read receipt from
// another device of this user marks incoming messages read; one that comes
// before its message applies when the message comes; a delivery receipt
// settles a queued message.
func TestApplyReceipt(t *testing.T) {
	ctx := context.Background()
	h := openTestHistory(t)
	t0 := time.UnixMilli(2_000_000)
	mustAdd(t, h,
		Message{ID: "a1", From: "alice", To: "bob", Sent: t0, Body: "1", State: Delivered, Path: "direct"},
		Message{ID: "a2", From: "alice", To: "bob", Sent: t0.Add(time.Millisecond), Body: "2", State: Queued},
		Message{ID: "b1", From: "bob", To: "alice", Sent: t0.Add(2 * time.Millisecond), Body: "3", Incoming: true, State: Received})

	// mallory's receipt for alice's message to bob counts for nothing.
	if ch, err := h.ApplyReceipt(ctx, "alice", "mallory", ReceiptRead, []string{"a1"}); err != nil || len(ch) != 0 {
		t.Errorf("forged receipt changed %v, %v", states(ch), err)
	}
	// bob's delivery receipt settles the queued a2 (through the mailbox).
	ch, err := h.ApplyReceipt(ctx, "alice", "bob", ReceiptDelivered, []string{"a2"})
	if err != nil || len(ch) != 1 || ch[0].State != Delivered || ch[0].Path != MailboxPath {
		t.Fatalf("delivery receipt: %+v, %v; want a2 delivered via the mailbox", ch, err)
	}
	if out, _ := h.Outbox(ctx, "bob"); len(out) != 0 {
		t.Errorf("outbox after the receipt: %v", states(out))
	}
	// bob read both.
	ch, err = h.ApplyReceipt(ctx, "alice", "bob", ReceiptRead, []string{"a1", "a2"})
	if err != nil || !slices.Equal(states(ch), []string{"a1:read", "a2:read"}) {
		t.Fatalf("read receipt: %v, %v", states(ch), err)
	}
	// Applied once: the same receipt again changes nothing, nor does an
	// older kind.
	if ch, _ := h.ApplyReceipt(ctx, "alice", "bob", ReceiptRead, []string{"a1"}); len(ch) != 0 {
		t.Errorf("replayed receipt changed %v", states(ch))
	}
	if ch, _ := h.ApplyReceipt(ctx, "alice", "bob", ReceiptDelivered, []string{"a1"}); len(ch) != 0 {
		t.Errorf("late delivery receipt changed %v", states(ch))
	}
	// alice's other device read b1, and b2 which is not here yet.
	ch, err = h.ApplyReceipt(ctx, "alice", "alice", ReceiptRead, []string{"b1", "b2"})
	if err != nil || !slices.Equal(states(ch), []string{"b1:read"}) {
		t.Fatalf("read on another device: %v, %v; want b1 read", states(ch), err)
	}
	mustAdd(t, h, Message{ID: "b2", From: "bob", To: "alice", Sent: t0.Add(3 * time.Millisecond), Body: "4", Incoming: true, State: Received})
	if n, _ := h.Unread(ctx, "bob"); n != 0 {
		t.Errorf("unread after the early receipt: %d, want 0", n)
	}
	if owed, _ := h.OwedReceipts(ctx, 10); len(owed) != 0 {
		t.Errorf("receipts owed for another device's reading: %+v", owed)
	}
}

// History pages back in the order every device shows: the sender's clock,
// then the id; not the order this device stored them in.
func TestHistoryPages(t *testing.T) {
	ctx := context.Background()
	h := openTestHistory(t)
	t0 := time.UnixMilli(3_000_000)
	var ms []Message
	for i := range 7 {
		ms = append(ms, Message{ID: newID(), From: "alice", To: "bob", Sent: t0.Add(time.Duration(i/2) * time.Millisecond), Body: "x", State: Delivered})
	}
	for _, m := range slices.Backward(ms) {
		mustAdd(t, h, m)
	}
	var want []string
	for _, m := range ms {
		want = append(want, m.ID)
	}
	ids := func(ms []Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	last, err := h.With(ctx, "bob", 3, "")
	if err != nil || !slices.Equal(ids(last), want[4:]) {
		t.Fatalf("last 3: %v, %v; want %v", ids(last), err, want[4:])
	}
	prev, err := h.With(ctx, "bob", 3, last[0].ID)
	if err != nil || !slices.Equal(ids(prev), want[1:4]) {
		t.Fatalf("3 before %s: %v, %v; want %v", last[0].ID, ids(prev), err, want[1:4])
	}
	first, err := h.With(ctx, "bob", 3, prev[0].ID)
	if err != nil || !slices.Equal(ids(first), want[:1]) {
		t.Fatalf("before %s: %v, %v; want %v", prev[0].ID, ids(first), err, want[:1])
	}
	if none, err := h.With(ctx, "bob", 3, "no-such-id"); err != nil || len(none) != 0 {
		t.Errorf("before an unknown id: %v, %v; want none", ids(none), err)
	}
}

// A history of the previous release keeps its messages, queued and on the
// server included, and owes no copies for them.
func TestHistoryMigratesV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "history.db")
	db, err := sqlitedb.Open(path, historyMigrations[:2])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO messages (id, contact, sender, recipient, sent_at, stored_at, body, incoming, state, path, on_server)
		VALUES ('q1', 'bob', 'alice', 'bob', 1, 1, 'queued one', 0, 'queued', '', 1),
		       ('r1', 'bob', 'bob', 'alice', 2, 2, 'from bob', 1, 'received', 'direct', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	h, err := OpenHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	all, err := h.With(ctx, "bob", 10, "")
	if err != nil || !slices.Equal(states(all), []string{"q1:sent", "r1:received"}) {
		t.Fatalf("migrated history: %v, %v", states(all), err)
	}
	if out, _ := h.Outbox(ctx, "bob"); len(out) != 1 {
		t.Errorf("migrated outbox: %v, want q1", states(out))
	}
	if owed, _ := h.OwedCopies(ctx, 10); len(owed) != 0 {
		t.Errorf("copies owed for old messages: %v", states(owed))
	}
}

// Copies are owed once a message's first delivery attempt is over
// (delivered here, or deposited in the mailbox), never for a queued
// message, a sent copy or one that failed; and once only.
func TestOwedCopies(t *testing.T) {
	ctx := context.Background()
	h := openTestHistory(t)
	t0 := time.UnixMilli(4_000_000)
	q := func(id string) Message {
		return Message{ID: id, From: "alice", To: "bob", Sent: t0, Body: id, State: Queued}
	}
	mustAdd(t, h, q("delivered"), q("deposited"), q("queued"), q("failed"),
		Message{ID: "copy", From: "alice", To: "bob", Sent: t0, Body: "c", State: Sent, Copy: true})
	if err := h.settleAll(ctx, []Message{{ID: "delivered", State: Delivered, Path: "direct", DeliveredTo: "12D3KooWbob"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.MarkOnServer(ctx, "deposited"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.FailQueued(ctx, "failed", "no"); err != nil {
		t.Fatal(err)
	}
	owed, err := h.OwedCopies(ctx, 10)
	if err != nil || !slices.Equal(states(owed), []string{"delivered:delivered", "deposited:sent"}) {
		t.Fatalf("owed copies: %v, %v; want delivered and deposited", states(owed), err)
	}
	if owed[0].DeliveredTo != "12D3KooWbob" {
		t.Errorf("delivered to %q, want the acknowledging device", owed[0].DeliveredTo)
	}
	if err := h.CopiesSent(ctx, "delivered", "deposited"); err != nil {
		t.Fatal(err)
	}
	if owed, _ := h.OwedCopies(ctx, 10); len(owed) != 0 {
		t.Errorf("owed after sending: %v", states(owed))
	}
}

package chat

import (
	"context"
	"errors"
	"github.com/parleynet/parley/app/contacts/contactstest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

type user struct {
	name string
	node *node.Node
	hist *History
	svc  *Service
	mu   sync.Mutex
	got  []Message
}

// newUser starts a user on a public node, or with opts instead of public
// reachability.
func newUser(t testing.TB, name string, opts ...node.Option) *user {
	t.Helper()
	h, err := OpenHistory(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	// Cleanups run last first: the node is closed before its history.
	if len(opts) == 0 {
		opts = []node.Option{node.WithReachability(node.ReachabilityPublic)}
	}
	n := nodetest.New(t, opts...)
	return &user{name: name, node: n, hist: h}
}

// befriend starts the chat services with each user knowing the others,
// and returns the shared contact list.
func befriend(users ...*user) *contactstest.Book {
	b := contactstest.New(nil)
	for _, u := range users {
		b.Set(u.name, u.node.ID())
	}
	for _, u := range users {
		for _, o := range users {
			if o != u {
				u.node.Peerstore().AddAddrs(o.node.ID(), o.node.Addrs(), time.Hour)
			}
		}
		u.svc = NewService(u.node, u.hist, b, func() string { return u.name }, nil)
		u.svc.OnMessage(func(m Message) { u.mu.Lock(); u.got = append(u.got, m); u.mu.Unlock() })
	}
	return b
}

func TestSendDeliversStoresAndLabelsPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)

	m, err := alice.svc.Send(ctx, "bob", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != "direct" || m.From != "alice" || m.To != "bob" || m.Incoming || m.State != Delivered {
		t.Errorf("sent message: got %+v", m)
	}
	got, err := bob.hist.With(ctx, "alice", 10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != m.ID || got[0].Body != "hello" || !got[0].Incoming || got[0].Path != "direct" || got[0].State != Received {
		t.Fatalf("bob's history: got %+v, want the one message %s", got, m.ID)
	}
	mine, _ := alice.hist.With(ctx, "bob", 10, "")
	if len(mine) != 1 || mine[0].ID != m.ID || mine[0].Incoming || mine[0].State != Delivered || mine[0].Path != "direct" {
		t.Fatalf("alice's history: got %+v", mine)
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	if len(bob.got) != 1 || bob.got[0].ID != m.ID {
		t.Fatalf("OnMessage calls: got %+v", bob.got)
	}
}

// rawSend writes one Message frame from u to the recipient and returns the
// Ack, bypassing Service.Send's checks.
func rawSend(t *testing.T, ctx context.Context, from *user, to peer.ID, msg *pb.Message) *pb.Ack {
	t.Helper()
	st, err := from.node.NewStream(ctx, to, ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := wire.Write(st, msg, 0); err != nil {
		t.Fatal(err)
	}
	ack := new(pb.Ack)
	if err := wire.NewReader(st, MaxFrameSize).Read(ack); err != nil {
		t.Fatalf("read ack: %v", err)
	}
	return ack
}

func TestRetriedMessageStoredOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)
	msg := &pb.Message{Id: "retry-1", Sender: "alice", SentUnixMs: time.Now().UnixMilli(), Body: "once"}
	for i := range 3 {
		if ack := rawSend(t, ctx, alice, bob.node.ID(), msg); ack.Status != pb.Status_STATUS_DELIVERED {
			t.Fatalf("attempt %d: got %v (%s), want delivered", i, ack.Status, ack.Error)
		}
	}
	got, _ := bob.hist.With(ctx, "alice", 10, "")
	if len(got) != 1 {
		t.Fatalf("got %d stored copies, want 1", len(got))
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	if len(bob.got) != 1 {
		t.Fatalf("got %d OnMessage calls, want 1", len(bob.got))
	}
}

func TestRejections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob, mallory := newUser(t, "alice"), newUser(t, "bob"), newUser(t, "mallory")
	befriend(alice, bob)
	// mallory knows where bob is but is not in his contacts.
	mallory.node.Peerstore().AddAddrs(bob.node.ID(), bob.node.Addrs(), time.Hour)

	later, rejected := pb.Status_STATUS_TRY_LATER, pb.Status_STATUS_REJECTED
	tests := []struct {
		name   string
		from   *user
		msg    *pb.Message
		status pb.Status
		want   string
	}{
		{"stranger", mallory, &pb.Message{Id: "m1", Sender: "mallory", Body: "hi"}, later, "not a contact"},
		{"stranger claiming to be alice", mallory, &pb.Message{Id: "m2", Sender: "alice", Body: "hi"}, later, "not a contact"},
		{"contact forging sender", alice, &pb.Message{Id: "m3", Sender: "carol", Body: "hi"}, rejected, "does not match"},
		{"missing id", alice, &pb.Message{Sender: "alice", Body: "hi"}, rejected, "id missing"},
		{"empty body", alice, &pb.Message{Id: "m4", Sender: "alice"}, rejected, "empty"},
		{"oversized body", alice, &pb.Message{Id: "m5", Sender: "alice", Body: strings.Repeat("x", MaxBodySize+1)}, rejected, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack := rawSend(t, ctx, tt.from, bob.node.ID(), tt.msg)
			if ack.Status != tt.status || !strings.Contains(ack.Error, tt.want) {
				t.Fatalf("got %v %q, want %v with %q", ack.Status, ack.Error, tt.status, tt.want)
			}
		})
	}
	for _, contact := range []string{"alice", "mallory", "carol"} {
		if got, _ := bob.hist.With(ctx, contact, 10, ""); len(got) != 0 {
			t.Errorf("rejected messages stored under %s: %+v", contact, got)
		}
	}
}

func TestOversizedFrameResetsStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)
	st, err := alice.node.NewStream(ctx, bob.node.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	huge := &pb.Message{Id: "big", Sender: "alice", Body: strings.Repeat("x", 2*MaxFrameSize)}
	_ = wire.Write(st, huge, 0)
	err = wire.NewReader(st, MaxFrameSize).Read(new(pb.Ack))
	if err == nil || !(errors.Is(err, network.ErrReset) || strings.Contains(err.Error(), "reset")) {
		t.Fatalf("got %v, want the stream reset", err)
	}
	if got, _ := bob.hist.With(ctx, "alice", 10, ""); len(got) != 0 {
		t.Fatalf("oversized message stored: %+v", got)
	}
}

func TestSendErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)
	if _, err := alice.svc.Send(ctx, "dave", "hi"); !errors.Is(err, ErrNotAContact) {
		t.Errorf("send to a non-contact: got %v, want ErrNotAContact", err)
	}
	if _, err := alice.svc.Send(ctx, "bob", ""); err == nil {
		t.Error("empty message sent")
	}
	if got, _ := alice.hist.With(ctx, "dave", 10, ""); len(got) != 0 {
		t.Errorf("refused message stored: %+v", got)
	}
	// bob's device dies without presence noticing yet: the message is
	// kept in the outbox, not lost and not shown as delivered.
	bob.node.Close()
	m, err := alice.svc.Send(ctx, "bob", "are you there?")
	if err != nil || m.State != Queued {
		t.Errorf("send to a dead device: got %+v, %v; want queued", m, err)
	}
	if got, _ := alice.hist.Outbox(ctx, "bob"); len(got) != 1 || got[0].ID != m.ID {
		t.Errorf("outbox: got %+v, want the one message", got)
	} else if !got[0].Sent.Equal(m.Sent) {
		t.Errorf("queued message: Send says sent at %v, the history %v", m.Sent, got[0].Sent)
	}
}

func TestHistoryOrderAndLimit(t *testing.T) {
	ctx := context.Background()
	h, err := OpenHistory(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i, body := range []string{"one", "two", "three"} {
		if _, err := h.Add(ctx, Message{ID: body, From: "alice", To: "bob", Sent: time.UnixMilli(int64(i)), Body: body, State: Delivered}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := h.With(ctx, "bob", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Body != "two" || got[1].Body != "three" {
		t.Fatalf("got %+v, want the last two oldest first", got)
	}
}

func TestOutboxDeliversInOrderWhenContactComesOnline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	contacts := befriend(alice, bob)
	contacts.Set("bob", "") // bob is offline

	var ids []string
	for _, body := range []string{"one", "two", "three"} {
		m, err := alice.svc.Send(ctx, "bob", body)
		if err != nil {
			t.Fatal(err)
		}
		if m.State != Queued || m.Path != "" {
			t.Fatalf("send to offline bob: got %+v, want queued", m)
		}
		ids = append(ids, m.ID)
	}
	if _, err := alice.svc.Flush(ctx, "bob"); !errors.Is(err, ErrOffline) {
		t.Fatalf("flush while offline: got %v, want ErrOffline", err)
	}

	contacts.Set("bob", bob.node.ID())
	settled, err := alice.svc.Flush(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(settled) != 3 {
		t.Fatalf("settled %d messages, want 3", len(settled))
	}
	got, _ := bob.hist.With(ctx, "alice", 10, "")
	if len(got) != 3 {
		t.Fatalf("bob has %d messages, want 3", len(got))
	}
	for i, m := range got {
		if m.ID != ids[i] {
			t.Errorf("bob's message %d: got %s (%q), want %s: order lost", i, m.ID, m.Body, ids[i])
		}
	}
	mine, _ := alice.hist.With(ctx, "bob", 10, "")
	for _, m := range mine {
		if m.State != Delivered || m.Path != "direct" {
			t.Errorf("alice's copy %q: got state %s path %q, want delivered direct", m.Body, m.State, m.Path)
		}
	}
	if q, _ := alice.hist.Outbox(ctx, "bob"); len(q) != 0 {
		t.Errorf("outbox not empty after delivery: %+v", q)
	}
}

// TestOutboxWaitsForRecipientToKnowUs: a recipient whose presence view lags
// answers try-later; the message stays queued and goes through once the
// recipient knows the sender.
func TestOutboxWaitsForRecipientToKnowUs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	contacts := befriend(alice, bob)
	// The book is shared; make bob's view lag by hiding alice's device
	// from UsernameOf only.
	contacts.Set("alice", "")
	m, err := alice.svc.Send(ctx, "bob", "early")
	if err != nil || m.State != Queued {
		t.Fatalf("got %+v, %v; want queued", m, err)
	}
	contacts.Set("alice", alice.node.ID())
	if _, err := alice.svc.Flush(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if got, _ := bob.hist.With(ctx, "alice", 10, ""); len(got) != 1 || got[0].ID != m.ID {
		t.Fatalf("bob's history: got %+v, want the early message", got)
	}
}

func TestOutboxSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "h.db")
	h, err := OpenHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	m := Message{ID: "q1", From: "alice", To: "bob", Sent: time.Now(), Body: "later", State: Queued}
	if _, err := h.Add(ctx, m); err != nil {
		t.Fatal(err)
	}
	h.Close()
	h, err = OpenHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	q, err := h.Outbox(ctx, "bob")
	if err != nil || len(q) != 1 || q[0].ID != "q1" || q[0].State != Queued {
		t.Fatalf("outbox after reopen: got %+v, %v", q, err)
	}
	contacts, err := h.OutboxContacts(ctx)
	if err != nil || len(contacts) != 1 || contacts[0] != "bob" {
		t.Fatalf("outbox contacts: got %v, %v", contacts, err)
	}
	if err := h.settle(ctx, "q1", Delivered, "direct", ""); err != nil {
		t.Fatal(err)
	}
	if err := h.settle(ctx, "q1", Delivered, "direct", ""); !errors.Is(err, errNotQueued) {
		t.Fatalf("settling twice: got %v, want errNotQueued", err)
	}
}

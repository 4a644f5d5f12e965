package app

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/chat"
	chatpb "github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/app/contacts/contactstest"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/internal/seal"
)

// The data directory names the file seal keeps the mailbox key in.
func TestMailboxKeyFileName(t *testing.T) {
	if datadir.MailboxKeyFile != seal.KeyFile {
		t.Fatalf("datadir.MailboxKeyFile is %q, seal.KeyFile is %q", datadir.MailboxKeyFile, seal.KeyFile)
	}
}

// mailMessage takes a chat message whose id and sender match the sealed
// envelope's, and refuses what chat would refuse over a stream.
func TestMailMessage(t *testing.T) {
	sent := time.UnixMilli(time.Now().UnixMilli())
	opened := func(id, sender string, pm *chatpb.Message) *seal.Message {
		body, err := proto.Marshal(pm)
		if err != nil {
			t.Fatal(err)
		}
		return &seal.Message{SenderUser: sender, ID: id, Body: body}
	}
	book := contactstest.New(map[string]peer.ID{"alice": ""})
	good := &chatpb.Message{Id: "m1", Sender: "alice", SentUnixMs: sent.UnixMilli(), Body: "hi"}
	m, err := mailMessage(opened("m1", "alice", good), good, "bob", book)
	if err != nil {
		t.Fatal(err)
	}
	want := chat.Message{ID: "m1", From: "alice", To: "bob", Sent: sent, Body: "hi", Incoming: true, State: chat.Received, Path: MailboxPath}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	for name, o := range map[string]*seal.Message{
		"other id":                opened("m2", "alice", good),
		"other sender":            opened("m1", "carol", good),
		"empty body":              opened("m1", "alice", &chatpb.Message{Id: "m1", Sender: "alice"}),
		"long body":               opened("m1", "alice", &chatpb.Message{Id: "m1", Sender: "alice", Body: strings.Repeat("x", chat.MaxBodySize+1)}),
		"long id":                 opened(strings.Repeat("i", 65), "alice", &chatpb.Message{Id: strings.Repeat("i", 65), Sender: "alice", Body: "hi"}),
		"not protobuf":            {SenderUser: "alice", ID: "m1", Body: []byte{0xff, 0xff}},
		"to another user":         opened("m1", "alice", &chatpb.Message{Id: "m1", Sender: "alice", Body: "hi", Recipient: "carol"}),
		"sent copy to a stranger": opened("m1", "bob", &chatpb.Message{Id: "m1", Sender: "bob", Body: "hi", Recipient: "mallory"}),
		"sent copy to nobody":     opened("m1", "bob", &chatpb.Message{Id: "m1", Sender: "bob", Body: "hi"}),
	} {
		pm, err := decodeMailItem(o)
		if err != nil {
			continue // refused
		}
		if _, err := mailMessage(o, pm.GetMessage(), "bob", book); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// A sent copy from another device of bob's: bob's message to alice.
	cp := &chatpb.Message{Id: "m3", Sender: "bob", SentUnixMs: sent.UnixMilli(), Body: "mine", Recipient: "alice", Delivered: true, Path: "direct"}
	m, err = mailMessage(opened("m3", "bob", cp), cp, "bob", book)
	want = chat.Message{ID: "m3", From: "bob", To: "alice", Sent: sent, Body: "mine", State: chat.Delivered, Path: "direct", Copy: true}
	if err != nil || m != want {
		t.Errorf("sent copy: got %+v, %v; want %+v", m, err, want)
	}
}

// A mailbox item is a message or a receipt; a bare chat message (the
// previous release's mail) still reads as a message.
func TestDecodeMailItem(t *testing.T) {
	bare, _ := proto.Marshal(&chatpb.Message{Id: "m1", Sender: "alice", Body: "hi"})
	item, err := decodeMailItem(&seal.Message{ID: "m1", SenderUser: "alice", Body: bare})
	if err != nil || item.GetMessage().GetBody() != "hi" {
		t.Errorf("bare message: %v, %v", item, err)
	}
	body, err := mailItem(&chatpb.Receipt{Kind: chatpb.Receipt_KIND_READ, Ids: []string{"m1"}})
	if err != nil {
		t.Fatal(err)
	}
	item, err = decodeMailItem(&seal.Message{ID: "r1", SenderUser: "alice", Body: body})
	if err != nil || item.GetReceipt().GetKind() != chatpb.Receipt_KIND_READ || item.GetMessage() != nil {
		t.Errorf("receipt: %v, %v", item, err)
	}
}

// FuzzMailItem: whatever a device seals, reading it never panics, and
// what is taken as a message keeps the chat rules and names the sealing
// user as its sender.
func FuzzMailItem(f *testing.F) {
	for _, item := range []proto.Message{
		&chatpb.Message{Id: "m1", Sender: "alice", Body: "hi"},
		&chatpb.Message{Id: "m1", Sender: "bob", Body: "mine", Recipient: "alice", Delivered: true, Path: "direct"},
		&chatpb.Receipt{Kind: chatpb.Receipt_KIND_READ, Ids: []string{"m1", "m2"}},
	} {
		body, err := mailItem(item)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("alice", body)
		f.Add("bob", body)
	}
	book := contactstest.New(map[string]peer.ID{"alice": ""})
	f.Fuzz(func(t *testing.T, sender string, body []byte) {
		opened := &seal.Message{SenderUser: sender, ID: "m1", Body: body}
		item, err := decodeMailItem(opened)
		if err != nil {
			return
		}
		pm := item.GetMessage()
		if pm == nil {
			return
		}
		m, err := mailMessage(opened, pm, "bob", book)
		if err != nil {
			return
		}
		if err := chat.CheckIncoming(m.ID, m.Body); err != nil {
			t.Errorf("accepted a message that breaks the chat rules: %v", err)
		}
		if m.From != sender || (m.Incoming && m.To != "bob") || (!m.Incoming && (sender != "bob" || m.To != "alice")) {
			t.Errorf("accepted %+v sealed by %s", m, sender)
		}
	})
}

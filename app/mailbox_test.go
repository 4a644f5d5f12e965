package app

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/app/chat"
	chatpb "github.com/parleynet/parley/app/chat/pb"
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
	good := &chatpb.Message{Id: "m1", Sender: "alice", SentUnixMs: sent.UnixMilli(), Body: "hi"}
	m, err := mailMessage(opened("m1", "alice", good), "bob")
	if err != nil {
		t.Fatal(err)
	}
	want := chat.Message{ID: "m1", From: "alice", To: "bob", Sent: sent, Body: "hi", Incoming: true, State: chat.Received, Path: MailboxPath}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	for name, o := range map[string]*seal.Message{
		"other id":     opened("m2", "alice", good),
		"other sender": opened("m1", "carol", good),
		"empty body":   opened("m1", "alice", &chatpb.Message{Id: "m1", Sender: "alice"}),
		"long body":    opened("m1", "alice", &chatpb.Message{Id: "m1", Sender: "alice", Body: strings.Repeat("x", chat.MaxBodySize+1)}),
		"long id":      opened(strings.Repeat("i", 65), "alice", &chatpb.Message{Id: strings.Repeat("i", 65), Sender: "alice", Body: "hi"}),
		"not protobuf": {SenderUser: "alice", ID: "m1", Body: []byte{0xff, 0xff}},
	} {
		if _, err := mailMessage(o, "bob"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

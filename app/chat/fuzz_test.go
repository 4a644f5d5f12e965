package chat

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"github.com/parleynet/parley/app/contacts/contactstest"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node/nodetest"
)

type noDeadlines struct{}

func (noDeadlines) SetReadDeadline(time.Time) error  { return nil }
func (noDeadlines) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeMessages feeds arbitrary bytes to the recipient's side of a
// stream: it must never panic; it answers with well-formed acks, one per
// message it read, in order; it stores only valid messages from the
// stream's sender, each id once.
func FuzzServeMessages(f *testing.F) {
	var seed bytes.Buffer
	for _, m := range []*pb.Message{
		{Id: "a", Sender: "alice", SentUnixMs: 1, Body: "hi"},
		{Id: "a", Sender: "alice", SentUnixMs: 1, Body: "hi"}, // a resend
		{Id: "b", Sender: "mallory", Body: "forged"},
		{Id: "", Sender: "alice", Body: "no id"},
		{Id: "c", Sender: "alice", Body: "\xff"},
	} {
		protodelim.MarshalTo(&seed, m)
	}
	f.Add(seed.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x05, 0x0a, 0x01})
	h, err := OpenHistory(filepath.Join(f.TempDir(), "h.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { h.Close() })
	alice := nodetest.PeerID(f)
	contacts := contactstest.New(map[string]peer.ID{"alice": alice})
	s := &Service{history: h, contacts: contacts, self: func() string { return "bob" }, ctx: context.Background()}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		read := 0
		ib := &inbound{s: s, st: noDeadlines{}, remote: alice, path: "direct", br: bufio.NewReaderSize(bytes.NewReader(in), readBuffer), bw: bufio.NewWriter(&out)}
		_ = ib.serve()
		// Count the messages in the input the way the recipient reads them.
		r := wire.NewReader(bytes.NewReader(in), MaxFrameSize)
		var ids []string
		for {
			m := new(pb.Message)
			if err := r.Read(m); err != nil {
				break
			}
			ids = append(ids, ackID(m.GetId()))
			read++
		}
		ar := wire.NewReader(&out, MaxFrameSize)
		for i := 0; ; i++ {
			a := new(pb.Ack)
			err := ar.Read(a)
			if errors.Is(err, io.EOF) {
				if i != read {
					t.Fatalf("%d acks for %d messages", i, read)
				}
				break
			}
			if err != nil {
				t.Fatalf("ack %d: %v", i, err)
			}
			if i >= len(ids) || a.GetId() != ids[i] {
				t.Fatalf("ack %d answers %q, want %q", i, a.GetId(), ids[min(i, len(ids)-1)])
			}
			if a.GetStatus() == pb.Status_STATUS_UNSPECIFIED {
				t.Fatalf("ack %d without a status", i)
			}
		}
		stored, err := h.With(context.Background(), "mallory", 10, "")
		if err != nil || len(stored) != 0 {
			t.Fatalf("forged messages stored: %+v, %v", stored, err)
		}
	})
}

// FuzzAcks feeds arbitrary bytes to the sender's ack reader and matches
// what it decodes against three messages on the stream: it must never
// panic, settle more than were sent, or settle a message with an ack for
// another.
func FuzzAcks(f *testing.F) {
	var seed bytes.Buffer
	for _, a := range []*pb.Ack{
		{Id: "1", Status: pb.Status_STATUS_DELIVERED},
		{Id: "2", Status: pb.Status_STATUS_REJECTED, Error: "no"},
		{Id: "3", Status: pb.Status_STATUS_TRY_LATER},
		{Id: "4", Status: pb.Status_STATUS_DELIVERED},
	} {
		protodelim.MarshalTo(&seed, a)
	}
	f.Add(seed.Bytes())
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		var sent []*outgoing
		for _, id := range []string{"1", "2", "3"} {
			sent = append(sent, &outgoing{m: Message{ID: id, State: Queued}})
		}
		br := bufio.NewReader(bytes.NewReader(in))
		r := wire.NewReader(br, MaxFrameSize)
		settled := 0
		for {
			batch, err := readAckBatch(br, r)
			if len(batch) > maxBatch {
				t.Fatalf("batch of %d acks", len(batch))
			}
			n, stop := matchAcks(sent[settled:], batch, "direct", "", "")
			for _, o := range sent[settled : settled+n] {
				if o.m.State != Delivered && o.m.State != Failed {
					t.Fatalf("settled message %s in state %s", o.m.ID, o.m.State)
				}
			}
			for i := range n {
				if batch[i].GetId() != sent[settled+i].m.ID {
					t.Fatalf("message %s settled by an ack for %q", sent[settled+i].m.ID, batch[i].GetId())
				}
			}
			settled += n
			if stop != nil || err != nil {
				break
			}
		}
		for _, o := range sent[settled:] {
			if o.m.State != Queued {
				t.Fatalf("unsettled message %s in state %s", o.m.ID, o.m.State)
			}
		}
	})
}

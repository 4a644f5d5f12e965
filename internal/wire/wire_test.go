package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/app/chat/pb"
)

func frame(payload []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(payload))), payload...)
}

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	want := []*pb.Message{
		{Id: "1", Sender: "alice", SentUnixMs: 42, Body: "hi"},
		{Id: "2", Sender: "alice", Body: strings.Repeat("x", 1000)},
	}
	for _, m := range want {
		if err := Write(&buf, m, 4096); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf, 4096)
	for _, w := range want {
		got := new(pb.Message)
		if err := r.Read(got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, w) {
			t.Fatalf("got %v, want %v", got, w)
		}
	}
	if err := r.Read(new(pb.Message)); !errors.Is(err, io.EOF) {
		t.Fatalf("after last frame: got %v, want io.EOF", err)
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"oversized length prefix", frame(make([]byte, 2000)), ErrTooLarge},
		{"huge varint length", protowire.AppendVarint(nil, 1<<40), ErrTooLarge},
		{"invalid protobuf body", frame([]byte{0xff, 0xff, 0xff}), ErrMalformed},
		{"field longer than frame", frame([]byte{0x0a, 0x05, 0x61}), ErrMalformed},
		{"invalid utf-8 in string", frame([]byte{0x0a, 0x02, 0xff, 0xfe}), ErrMalformed},
		{"truncated body", frame([]byte("abcdef"))[:4], io.ErrUnexpectedEOF},
		{"overlong varint", bytes.Repeat([]byte{0xff}, 11), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := NewReader(bytes.NewReader(tt.input), 1024).Read(new(pb.Message))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteRefusesOversized(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, &pb.Message{Body: strings.Repeat("x", 200)}, 100)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("wrote %d bytes of an oversized frame", buf.Len())
	}
}

func FuzzReadNoPanic(f *testing.F) {
	var buf bytes.Buffer
	_ = Write(&buf, &pb.Message{Id: "x", Body: "hello"}, 0)
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 512)
		for range 8 {
			if err := r.Read(new(pb.Message)); err != nil {
				return
			}
		}
	})
}

// countingWriter counts Write calls.
type countingWriter struct {
	bytes.Buffer
	calls int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.calls++
	return w.Buffer.Write(p)
}

// TestWriteOneCall: a frame, an empty message's too, goes out in one
// Write, so a peer that answers and closes as soon as the frame is
// complete never sees a second write fail the sender.
func TestWriteOneCall(t *testing.T) {
	for _, m := range []*pb.Message{{}, {Id: "1", Sender: "alice", Body: "hi"}} {
		var w countingWriter
		if err := Write(&w, m, 4096); err != nil {
			t.Fatal(err)
		}
		if w.calls != 1 {
			t.Errorf("%v: %d Write calls, want 1", m, w.calls)
		}
		got := new(pb.Message)
		if err := NewReader(&w.Buffer, 4096).Read(got); err != nil || !proto.Equal(got, m) {
			t.Errorf("read back %v (%v), want %v", got, err, m)
		}
	}
}

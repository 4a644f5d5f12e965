package splice

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/relay/splice/pb"
)

func FuzzParseHello(f *testing.F) {
	f.Add(encodeHello(Token{1, 2, 3}))
	f.Add([]byte("PSP1"))
	f.Add([]byte("GET / HTTP/1.0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := parseHello(b)
		if err == nil && !bytes.Equal(encodeHello(tok), b) {
			t.Fatalf("parseHello(%x) = %v, which encodes differently", b, tok)
		}
	})
}

// frame is m as it crosses the wire.
func frame(f *testing.F, m proto.Message) []byte {
	var buf bytes.Buffer
	if err := wire.Write(&buf, m, maxFrame); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzReadRequest(f *testing.F) {
	f.Add(frame(f, &pb.Request{Peer: []byte("\x00\x24\x08\x01\x12\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := readRequest(bytes.NewReader(b))
		if err == nil && p.Validate() != nil {
			t.Fatalf("readRequest accepted an invalid peer ID %q", p)
		}
	})
}

func FuzzParseOffer(f *testing.F) {
	f.Add(frame(f, &pb.Offer{Peer: []byte("x"), Token: make([]byte, TokenSize), Addr: []byte{4, 127, 0, 0, 1, 6, 0x10, 0x00}, TtlMs: 10000}))
	f.Fuzz(func(t *testing.T, b []byte) {
		o := new(pb.Offer)
		if err := wire.NewReader(bytes.NewReader(b), maxFrame).Read(o); err != nil {
			return
		}
		_, _, addr, err := parseOffer(o)
		if err == nil && len(addr) != 2 {
			t.Fatalf("parseOffer accepted address %v", addr)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(frame(f, &pb.Response{Status: pb.Response_STATUS_OK, Token: make([]byte, TokenSize), Addr: []byte{4, 127, 0, 0, 1, 6, 0x10, 0x00}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := new(pb.Response)
		if err := wire.NewReader(bytes.NewReader(b), maxFrame).Read(r); err != nil {
			return
		}
		_, addr, err := parseResponse(r)
		if err == nil && len(addr) != 2 {
			t.Fatalf("parseResponse accepted address %v", addr)
		}
	})
}

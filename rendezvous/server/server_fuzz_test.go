package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
)

// FuzzServerAnswersEveryRequest sends arbitrary bytes as one request to a
// live server, from an enrolled device with contacts, and checks that the
// server answers with a typed status (never INTERNAL, never silence) and
// keeps serving.
func FuzzServerAnswersEveryRequest(f *testing.F) {
	for _, seed := range requestSeeds {
		f.Add(frames(f, seed))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x03, 0x0a, 0x05, 0x61})

	ts := startServer(f, func(c *server.Config) { c.Limits = server.NoLimits() })
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	// The fuzzing device is carol, with a contact and a pending request;
	// her password is not in the seeds, so the fuzzer cannot delete her.
	carol, carolNode := newClient(f, ts)
	if _, err := carol.Register(ctx, "carol", "not-a-seed-password-7"); err != nil {
		f.Fatalf("register carol: %v", err)
	}
	for _, name := range []string{"bob", "dave"} {
		c, _ := newClient(f, ts)
		if _, err := c.Register(ctx, name, "password1"); err != nil {
			f.Fatalf("register %s: %v", name, err)
		}
		if _, err := c.RequestContact(ctx, "carol"); err != nil {
			f.Fatalf("%s requests carol: %v", name, err)
		}
	}
	if err := carol.AcceptContact(ctx, "bob"); err != nil {
		f.Fatalf("carol accepts bob: %v", err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := carolNode.NewStream(ctx, ts.node.ID(), rendezvous.ProtocolID)
		if err != nil {
			t.Fatalf("open stream: %v", err)
		}
		defer st.Reset()
		_ = st.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := st.Write(data); err != nil {
			t.Fatalf("write: %v", err)
		}
		if !complete(data) {
			// Let the server see the truncation at once. A complete frame
			// keeps the stream open: a login becomes a session, which
			// ends when the client hangs up.
			_ = st.CloseWrite()
		}
		resp := new(pb.Response)
		err = wire.NewReader(st, rendezvous.MaxResponseSize).Read(resp)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, network.ErrReset):
			// The input ended inside a frame header or body: the server
			// cannot tell a slow client from a dead one and hangs up. So
			// may it when a login's session reads garbage after the login
			// frame: its reset can overtake the login response (a QUIC
			// stream reset discards what the reader has not read yet).
			if complete(data) && !trailing(data) {
				t.Fatalf("server hung up on a complete frame %x: %v", data, err)
			}
			return
		case err != nil:
			t.Fatalf("read response to %x: %v", data, err)
		}
		if resp.Status == pb.Status_STATUS_UNSPECIFIED || resp.Status == pb.Status_STATUS_INTERNAL {
			t.Fatalf("response to %x: got status %v (%q), want a typed status", data, resp.Status, resp.Message)
		}
		if resp.Status != pb.Status_STATUS_OK && resp.Message == "" {
			t.Fatalf("response to %x: got %v with no message", data, resp.Status)
		}
	})
}

// trailing reports whether data has bytes after its first frame.
func trailing(data []byte) bool {
	n, k := binary.Uvarint(data)
	return k > 0 && uint64(len(data)-k) > n
}

// complete reports whether data holds at least one whole frame (a varint
// length and that many bytes).
func complete(data []byte) bool {
	var n, shift uint64
	for i, b := range data {
		if i == 10 {
			return true // an over-long length: the server must refuse it
		}
		n |= uint64(b&0x7f) << shift
		shift += 7
		if b < 0x80 {
			return uint64(len(data)-i-1) >= n || n > rendezvous.MaxDepositSize
		}
	}
	return false
}

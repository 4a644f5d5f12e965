package chat

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
)

// TestMessageTransport: a message records the transport of the
// connection its stream used, on both sides and in both histories. The
// pair is connected over one transport only (alice knows only bob's
// addresses of it), and what libp2p's connection state says is the
// independent signal.
func TestMessageTransport(t *testing.T) {
	for _, c := range []struct {
		transport string
		code      int
	}{
		{node.TransportTCP, ma.P_TCP},
		{node.TransportQUIC, ma.P_QUIC_V1},
	} {
		t.Run(c.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			alice, bob := newUser(t, "alice"), newUser(t, "bob")
			befriend(alice, bob)
			only := slices.DeleteFunc(bob.node.Addrs(), func(a ma.Multiaddr) bool {
				_, err := a.ValueForProtocol(c.code)
				return err != nil
			})
			alice.node.Peerstore().ClearAddrs(bob.node.ID())
			alice.node.Peerstore().AddAddrs(bob.node.ID(), only, time.Hour)

			m, err := alice.svc.Send(ctx, "bob", "over "+c.transport)
			if err != nil {
				t.Fatal(err)
			}
			conns := alice.node.Network().ConnsToPeer(bob.node.ID())
			if len(conns) != 1 {
				t.Fatalf("alice has %d connections to bob, want 1", len(conns))
			}
			if got := libp2pTransport(conns[0]); got != c.transport {
				t.Fatalf("libp2p says the connection runs on %q, want %q", got, c.transport)
			}
			if m.Path != "direct" || m.Transport != c.transport {
				t.Errorf("sent message: path %q transport %q, want direct over %s", m.Path, m.Transport, c.transport)
			}
			mine, err := alice.hist.With(ctx, "bob", 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(mine) != 1 || mine[0].Transport != c.transport {
				t.Errorf("alice's history: got %+v, want transport %s", mine, c.transport)
			}
			theirs, err := bob.hist.With(ctx, "alice", 10, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(theirs) != 1 || theirs[0].Path != "direct" || theirs[0].Transport != c.transport {
				t.Errorf("bob's history: got %+v, want direct over %s", theirs, c.transport)
			}
		})
	}
}

// libp2pTransport is libp2p's name for a connection's transport, in
// Path.Transport's terms.
func libp2pTransport(c network.Conn) string {
	if tr := c.ConnState().Transport; tr != "quic-v1" {
		return tr
	}
	return node.TransportQUIC
}

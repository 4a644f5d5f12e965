package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

func TestTransportOf(t *testing.T) {
	relay := nodetest.PeerID(t)
	target := nodetest.PeerID(t)
	cases := []struct {
		addr string
		want string
	}{
		{"/ip4/127.0.0.1/tcp/4001", "tcp"},
		{"/ip4/127.0.0.1/udp/4001/quic-v1", "quic"},
		{"/ip6/::1/udp/4001/quic-v1/p2p/" + target.String(), "quic"},
		{"/ip4/127.0.0.1/tcp/4001/p2p/" + relay.String() + "/p2p-circuit", "tcp"},
		{"/ip4/127.0.0.1/udp/4001/quic-v1/p2p/" + relay.String() + "/p2p-circuit/p2p/" + target.String(), "quic"},
		{"/ip4/127.0.0.1/tcp/4001/ws", "ws"},
		{"/p2p/" + relay.String() + "/p2p-circuit", ""},
		{"/ip4/127.0.0.1", ""},
	}
	for _, c := range cases {
		if got := node.TransportOf(ma.StringCast(c.addr)); got != c.want {
			t.Errorf("TransportOf(%s) = %q, want %q", c.addr, got, c.want)
		}
	}
}

// connTransport is the transport libp2p itself says a connection runs on
// (its security handshake's view), in Path.Transport's names: the
// independent signal the path's transport is checked against.
func connTransport(c network.Conn) string {
	switch tr := c.ConnState().Transport; tr {
	case "quic-v1":
		return node.TransportQUIC
	default:
		return tr
	}
}

// TestConnPathTransport: nodes that listen on one transport only are
// connected over it, and the path of the connection names it on both
// sides, as libp2p's connection state does.
func TestConnPathTransport(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ transport, listen string }{
		{node.TransportTCP, "/ip4/127.0.0.1/tcp/0"},
		{node.TransportQUIC, "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		t.Run(c.transport, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 20*time.Second)
			start := func() *node.Node {
				n, err := node.New(node.WithKey(nodetest.Key(t)), node.WithListenAddrs(c.listen), node.WithReachability(node.ReachabilityPublic))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { n.Close() })
				return n
			}
			a, b := start(), start()
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatal(err)
			}
			conns := a.Network().ConnsToPeer(b.ID())
			if len(conns) != 1 {
				t.Fatalf("a has %d connections to b, want 1", len(conns))
			}
			if got, want := a.ConnPath(conns[0]).Transport, connTransport(conns[0]); got != c.transport || got != want {
				t.Errorf("a's ConnPath transport = %q; libp2p says %q, listeners %q", got, want, c.transport)
			}
			if got := a.PathTo(b.ID()); got.Kind != node.Direct || got.Transport != c.transport {
				t.Errorf("a's path to b = %v over %q, want direct over %q", got, got.Transport, c.transport)
			}
			tstest.WaitFor(t, waitTimeout, func() error {
				if got := b.PathTo(a.ID()); got.Kind != node.Direct || got.Transport != c.transport {
					return fmt.Errorf("b's path to a = %v over %q, want direct over %q", got, got.Transport, c.transport)
				}
				return nil
			})
		})
	}
}

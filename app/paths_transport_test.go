package app

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous/client"
)

// TestRelayedPathTransport: a connection relayed by a supernode that
// listens on one transport only is labelled with that transport (the hop
// to the supernode), in the path event, in the contact's status and on
// bob's side too; libp2p's own state of the connection to the supernode
// is the independent signal.
func TestRelayedPathTransport(t *testing.T) {
	for _, c := range []struct{ transport, listen string }{
		{node.TransportTCP, "/ip4/127.0.0.1/tcp/0"},
		{node.TransportQUIC, "/ip4/127.0.0.1/udp/0/quic-v1"},
	} {
		t.Run(c.transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := node.New(node.WithKey(nodetest.Key(t)), node.WithListenAddrs(c.listen), node.WithReachability(node.ReachabilityPublic))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			svc, err := relayv2.New(r, relayv2.WithInfiniteLimits())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { svc.Close() })
			bob := nodetest.New(t)
			if _, err := circuit.Reserve(ctx, bob, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
				t.Fatalf("reserve a slot on the supernode: %v", err)
			}
			circ := ma.StringCast(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")

			n := nodetest.New(t, node.WithNATImitation())
			e := &Engine{node: n, contacts: newContactSync(n, nil), events: newEventLog()}
			e.paths, err = startPathWatcher(e.node, e.contacts.deviceContact, e.emit)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.paths.Close() })
			events := e.events.watch(ctx, 0)

			e.contacts.pushed(client.Update{Presence: ptr(online("bob", peer.AddrInfo{ID: bob.ID(), Addrs: []ma.Multiaddr{circ}}))})
			if err := e.node.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: bob.ID()}); err != nil {
				t.Fatalf("relayed connect: %v", err)
			}
			hop := n.Network().ConnsToPeer(r.ID())
			if len(hop) != 1 || connTransport(hop[0]) != c.transport {
				t.Fatalf("connections to the supernode: %v; want one over %s", hop, c.transport)
			}
			want := "relayed/" + c.transport + " via " + r.ID().String()
			for ev := range events {
				if ev.Kind != apitype.EventPath {
					continue
				}
				if got := apitype.PathLabel(ev.Contact.Path, ev.Contact.Transport); got != want {
					t.Fatalf("path event: %q, want %q", got, want)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			st := withPath(n, apitype.ContactStatus{Username: "bob", Peer: bob.ID().String()})
			if st.Transport != c.transport || apitype.PathLabel(st.Path, st.Transport) != want {
				t.Errorf("contact status: path %q transport %q, want %q", st.Path, st.Transport, want)
			}
			theirs := bob.Network().ConnsToPeer(r.ID())
			if p := bob.PathTo(n.ID()); p.Kind != node.Relayed || len(theirs) != 1 || p.Transport != connTransport(theirs[0]) {
				t.Errorf("bob's path to this device: %+v; bob's connections to the supernode %v", p, theirs)
			}
		})
	}
}

// connTransport is libp2p's name for a connection's transport, in
// node.Path's terms.
func connTransport(c network.Conn) string {
	if tr := c.ConnState().Transport; tr != "quic-v1" {
		return tr
	}
	return node.TransportQUIC
}

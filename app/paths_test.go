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

// TestPathEvents: a relayed connection to a contact's device, then a
// direct one beside it, then none, each show as a path event whose Path
// is what node.PathTo says at that moment; connections to other peers (the
// supernode) show nothing.
func TestPathEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	r := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	svc, err := relayv2.New(r, relayv2.WithInfiniteLimits())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	bob := nodetest.New(t) // bob's device
	if _, err := circuit.Reserve(ctx, bob, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
		t.Fatalf("reserve a slot on the supernode: %v", err)
	}
	circ := ma.StringCast(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")

	// This device: behind an imitated NAT, so that no hole punch upgrades
	// the relayed connection by itself.
	n := nodetest.New(t, node.WithNATImitation())
	e := &Engine{node: n, contacts: newContactSync(n, nil), events: newEventLog()}
	e.paths, err = startPathWatcher(e.node, e.contacts.deviceContact, e.emit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.paths.Close() })
	events := e.events.watch(ctx, 0)

	await := func(wantPath string) {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Kind != apitype.EventPath {
					continue
				}
				c := ev.Contact
				now := e.node.PathTo(bob.ID()).String()
				if c.Username != "bob" || c.Peer != bob.ID().String() || c.Path != wantPath || c.Path != now {
					t.Fatalf("path event: got %s on %s %q; want bob's device, %q; PathTo says %q", c.Username, c.Peer, c.Path, wantPath, now)
				}
				return
			case <-ctx.Done():
				t.Fatalf("no path event %q; PathTo says %q", wantPath, e.node.PathTo(bob.ID()))
			}
		}
	}

	e.contacts.pushed(client.Update{Presence: ptr(online("bob", peer.AddrInfo{ID: bob.ID(), Addrs: []ma.Multiaddr{circ}}))})
	if err := e.node.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: bob.ID()}); err != nil {
		t.Fatalf("relayed connect: %v", err)
	}
	await("relayed via " + r.ID().String())

	// Bob's device announces its direct addresses too; a direct dial opens
	// a second connection and the relayed one stays.
	e.contacts.pushed(client.Update{Presence: ptr(online("bob", peer.AddrInfo{ID: bob.ID(), Addrs: append(bob.Addrs(), circ)}))})
	if err := e.node.Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: bob.ID()}); err != nil {
		t.Fatalf("direct connect: %v", err)
	}
	await("direct")
	if n := len(e.node.Network().ConnsToPeer(bob.ID())); n < 2 {
		t.Errorf("%d connections to bob's device; want the relayed one beside the direct one", n)
	}

	if err := e.node.Network().ClosePeer(bob.ID()); err != nil {
		t.Fatal(err)
	}
	await("not connected")

	// Nothing was shown for the supernode; nothing more for bob.
	e.paths.Close()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == apitype.EventPath {
				t.Errorf("unexpected path event %+v", *ev.Contact)
			}
		case <-time.After(2 * pathSettle):
			return
		}
	}
}

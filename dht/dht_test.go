package dht

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// newNode starts a publicly reachable throwaway node (see nodetest.New).
func newNode(t *testing.T) *node.Node {
	t.Helper()
	return nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
}

// TestPrivateNetwork checks that servers speak only the Parley protocol and
// find each other through a bootstrap peer.
func TestPrivateNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := newNode(t), newNode(t)
	da, err := New(ctx, a, ModeServer, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { da.Close() })
	db, err := New(ctx, b, ModeServer, []peer.AddrInfo{{ID: a.ID(), Addrs: a.Addrs()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	protos := a.Mux().Protocols()
	if !slices.Contains(protos, protocol.ID(ProtocolID)) {
		t.Fatalf("node speaks %v, want %s among them", protos, ProtocolID)
	}
	if slices.Contains(protos, "/ipfs/kad/1.0.0") {
		t.Fatal("node speaks the public IPFS DHT protocol")
	}
	if err := db.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for db.RoutingTable().Find(a.ID()) == "" || da.RoutingTable().Find(b.ID()) == "" {
		select {
		case <-ctx.Done():
			t.Fatalf("routing tables never learned each other: a has %v, b has %v",
				da.RoutingTable().ListPeers(), db.RoutingTable().ListPeers())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

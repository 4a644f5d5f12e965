package nodetest_test

import (
	"testing"

	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

func TestNew(t *testing.T) {
	t.Parallel()
	a := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	b := nodetest.New(t)
	if a.ID() == b.ID() {
		t.Fatalf("two nodes share peer ID %s", a.ID())
	}
	for _, n := range []*node.Node{a, b} {
		addrs := n.Addrs()
		if len(addrs) == 0 {
			t.Errorf("node %s has no addresses", n.ID())
		}
		for _, addr := range addrs {
			if !manet.IsIPLoopback(addr) {
				t.Errorf("node %s listens on non-loopback %s", n.ID(), addr)
			}
		}
	}
	if p, q := nodetest.PeerID(t), nodetest.PeerID(t); p == q {
		t.Errorf("PeerID returned %s twice", p)
	}
}

package node_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

func TestSpliceRelayOf(t *testing.T) {
	via := nodetest.PeerID(t)
	other := nodetest.PeerID(t)
	spliced, err := node.SpliceAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4100}, via)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		addr ma.Multiaddr
		want bool
	}{
		{"spliced", spliced, true},
		{"circuit", ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/" + via.String() + "/p2p-circuit/p2p/" + other.String()), false},
		{"direct", ma.StringCast("/ip4/127.0.0.1/tcp/4001"), false},
		{"listener", ma.StringCast("/parley-splice"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := node.SpliceRelayOf(tt.addr)
			if ok != tt.want || (ok && got != via) {
				t.Errorf("SpliceRelayOf(%s) = %s, %v; want %s, %v", tt.addr, got, ok, via, tt.want)
			}
			if _, circuit := node.RelayOf(tt.addr); circuit && tt.want {
				t.Errorf("RelayOf(%s) takes a spliced address for a circuit", tt.addr)
			}
		})
	}
}

// TestSplicedConnPath: a spliced connection joins the swarm, is labelled
// relayed via its supernode, and the splice listener is never advertised.
func TestSplicedConnPath(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	a, b := nodetest.New(t), nodetest.New(t)
	via := nodetest.PeerID(t)
	for _, n := range []*node.Node{a, b} {
		if slices.ContainsFunc(n.Addrs(), node.IsSplice) {
			t.Errorf("%s advertises %v, with the splice listener", n.ID(), n.Addrs())
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		acc <- c
	}()
	ac, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	bc := <-acc
	errc := make(chan error, 1)
	go func() { errc <- b.UpgradeSpliced(ctx, bc, network.DirInbound, a.ID(), via) }()
	if err := a.UpgradeSpliced(ctx, ac, network.DirOutbound, b.ID(), via); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node.Node{a, b} {
		other := a.ID()
		if n == a {
			other = b.ID()
		}
		if p := n.PathTo(other); p.Kind != node.Relayed || p.Via != via {
			t.Errorf("PathTo = %v, want relayed via %s", p, via)
		}
		conns := n.Network().ConnsToPeer(other)
		if len(conns) != 1 {
			t.Fatalf("%d connections, want the spliced one", len(conns))
		}
		if p := n.ConnPath(conns[0]); p.String() != "relayed via "+via.String() {
			t.Errorf("ConnPath = %q, want relayed via %s", p, via)
		}
	}
}

func TestPunchPending(t *testing.T) {
	imitating := nodetest.New(t, node.WithNATImitation())
	other := nodetest.PeerID(t)
	if imitating.PunchPending(other) {
		t.Errorf("a NAT-imitating node (which never hole punches) says a punch is pending")
	}
	// A fresh node knows no address of its own to punch from.
	fresh := nodetest.New(t)
	if fresh.PunchPending(other) {
		t.Errorf("a node without a hole-punch address says a punch is pending")
	}
}

package node

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

const echoProto = "/parley-test/tcpfirst/1.0.0"

// TestTCPFirst: a node dials the peers WithPreferTCP names on TCP (those
// that also advertise relay circuits only on its own networks), others as
// go-libp2p does (QUIC first); a peer whose TCP address is dead is reached
// on QUIC all the same, and not tried on TCP again for a while.
func TestTCPFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var preferred peer.ID
	a := testNode(t, WithReachability(ReachabilityPublic), WithPreferTCP(func(p peer.ID) bool { return p == preferred }))
	start := func() *Node {
		n := testNode(t, WithReachability(ReachabilityPublic))
		n.SetStreamHandler(echoProto, func(s network.Stream) { _, _ = io.Copy(s, s); s.Close() })
		return n
	}
	open := func(p peer.ID) string {
		t.Helper()
		s, err := a.NewStream(ctx, p, echoProto)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		return a.ConnPath(s.Conn()).Transport
	}

	other := start()
	a.Peerstore().AddAddrs(other.ID(), other.Addrs(), peerstore.TempAddrTTL)
	if got := open(other.ID()); got != TransportQUIC {
		t.Errorf("a peer not preferred: connected on %q, want quic (go-libp2p's order)", got)
	}

	contact := start()
	preferred = contact.ID()
	a.Peerstore().AddAddrs(contact.ID(), contact.Addrs(), peerstore.TempAddrTTL)
	if got := open(contact.ID()); got != TransportTCP {
		t.Errorf("a preferred peer: connected on %q, want tcp", got)
	}
	if conns := contact.Network().ConnsToPeer(a.ID()); len(conns) != 1 || contact.ConnPath(conns[0]).Transport != TransportTCP {
		t.Errorf("the preferred peer's side: %v, want one TCP connection", conns)
	}

	// A peer that also advertises a relay circuit thinks itself behind a
	// NAT: tried on TCP first (briefly) when its TCP address is on a
	// network of this node's (here: loopback)…
	natted := start()
	preferred = natted.ID()
	circuit := ma.StringCast(other.Addrs()[0].String() + "/p2p/" + other.ID().String() + "/p2p-circuit")
	a.Peerstore().AddAddrs(natted.ID(), append(natted.Addrs(), circuit), peerstore.TempAddrTTL)
	if got := open(natted.ID()); got != TransportTCP {
		t.Errorf("a preferred peer with a circuit address on loopback: connected on %q, want tcp", got)
	}
	// …and dialled as usual when it is not (a public address that may be
	// its NAT's).
	far := start()
	preferred = far.ID()
	var farAddrs []ma.Multiaddr
	for _, x := range far.Addrs() {
		if TransportOf(x) == TransportQUIC {
			farAddrs = append(farAddrs, x)
		}
	}
	farAddrs = append(farAddrs, ma.StringCast("/ip4/198.51.100.7/tcp/4001"), circuit)
	a.Peerstore().AddAddrs(far.ID(), farAddrs, peerstore.TempAddrTTL)
	if got := open(far.ID()); got != TransportQUIC {
		t.Errorf("a preferred peer with a circuit and a foreign TCP address: connected on %q, want quic", got)
	}
	a.tcpFirst.mu.Lock()
	_, tried := a.tcpFirst.failed[far.ID()]
	a.tcpFirst.mu.Unlock()
	if tried {
		t.Error("the peer behind a NAT was tried on TCP first")
	}

	// A dead TCP address (a port nothing listens on) beside a live QUIC one.
	dead := start()
	preferred = dead.ID()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(port))}
	for _, x := range dead.Addrs() {
		if TransportOf(x) == TransportQUIC {
			addrs = append(addrs, x)
		}
	}
	a.Peerstore().AddAddrs(dead.ID(), addrs, peerstore.TempAddrTTL)
	if got := open(dead.ID()); got != TransportQUIC {
		t.Errorf("a preferred peer with a dead TCP address: connected on %q, want quic", got)
	}
	a.tcpFirst.mu.Lock()
	_, failed := a.tcpFirst.failed[dead.ID()]
	a.tcpFirst.mu.Unlock()
	if !failed {
		t.Error("the failed TCP-first dial is not remembered")
	}
	if a.tcpFirst.tcpOnly(dead.ID()) {
		t.Error("the TCP-only window is still open")
	}
}

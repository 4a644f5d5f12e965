package splice_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/relaytest"
	"github.com/parleynet/parley/relay/splice"
	"github.com/parleynet/parley/relay/splice/pb"
)

const echoProto = protocol.ID("/parley-test/echo/1.0.0")

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func echo(n *node.Node) {
	n.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
		}
	})
}

// echoOnce sends size random bytes to b and checks they come back; it
// returns the stream's connection.
func echoOnce(t *testing.T, ctx context.Context, a *node.Node, b peer.ID, size int) network.Conn {
	t.Helper()
	s, err := a.NewStream(network.WithAllowLimitedConn(ctx, "test"), b, echoProto)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer s.Close()
	payload := make([]byte, size)
	rand.Read(payload)
	go func() {
		if _, err := s.Write(payload); err == nil {
			s.CloseWrite()
		}
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: got %d bytes (err %v), want the %d-byte payload back", len(got), err, size)
	}
	return s.Conn()
}

// spliced returns n's spliced connection to p, if any.
func spliced(n *node.Node, p peer.ID) network.Conn {
	for _, c := range n.Network().ConnsToPeer(p) {
		if _, ok := node.SpliceRelayOf(c.RemoteMultiaddr()); ok {
			return c
		}
	}
	return nil
}

// relayedPair starts a supernode and two NAT-imitating nodes, B holding a
// reservation on it and A admitted there, both running splice clients
// when clients is true, and connects A to B through the circuit.
func relayedPair(t *testing.T, ctx context.Context, cfg relay.Config, clients bool) (sn relaytest.Supernode, a, b *node.Node) {
	t.Helper()
	iss := relaytest.NewIssuer(t)
	sn = iss.StartSupernode(t, cfg)
	a = nodetest.New(t, node.WithNATImitation())
	b = nodetest.New(t, node.WithNATImitation())
	echo(b)
	if clients {
		for _, n := range []*node.Node{a, b} {
			c := splice.StartClient(n)
			t.Cleanup(func() { c.Close() })
		}
	}
	src := func(context.Context, map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
		return []peer.AddrInfo{sn.Info()}, nil
	}
	r := relay.StartReserver(b, src, iss.Passport(t, b), relay.ReserverConfig{Interval: time.Second, Want: 1})
	t.Cleanup(func() { r.Close() })
	tstest.WaitFor(t, 20*time.Second, func() error {
		if len(b.CircuitAddrs()) == 0 {
			return fmt.Errorf("B holds no reservation yet")
		}
		return nil
	})
	if _, err := iss.Passport(t, a).Present(ctx, sn.Info()); err != nil {
		t.Fatalf("A presents its certificate: %v", err)
	}
	a.Peerstore().AddAddrs(b.ID(), b.CircuitAddrs(), peerstore.TempAddrTTL)
	if err := a.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: b.ID()}); err != nil {
		t.Fatalf("A connects to B through the supernode: %v", err)
	}
	return sn, a, b
}

// circuitBytes is what the supernode relayed through circuits.
func circuitBytes(sn relaytest.Supernode) uint64 {
	_, sp := sn.Service.Spliced()
	return sn.Service.Load().BytesRelayed - sp
}

// TestSpliceReplacesCircuit: two NATed nodes relayed through a supernode
// get a spliced connection, new streams take it, and its bytes cross the
// supernode's splice, not its circuit.
func TestSpliceReplacesCircuit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	sn, a, b := relayedPair(t, ctx, relay.Config{}, true)
	tstest.WaitFor(t, 20*time.Second, func() error {
		if spliced(a, b.ID()) == nil || spliced(b, a.ID()) == nil {
			return fmt.Errorf("no spliced connection between A and B yet: A has %v", a.Network().ConnsToPeer(b.ID()))
		}
		return nil
	})
	if p := a.PathTo(b.ID()); p.Kind != node.Relayed || p.Via != sn.Node.ID() {
		t.Errorf("A.PathTo(B) = %v, want relayed via %s", p, sn.Node.ID())
	}
	if p := b.ConnPath(spliced(b, a.ID())); p.Kind != node.Relayed || p.Via != sn.Node.ID() {
		t.Errorf("B's spliced connection's path = %v, want relayed via %s", p, sn.Node.ID())
	}
	before := circuitBytes(sn)
	_, splicedBefore := sn.Service.Spliced()
	const size = 8 << 20
	c := echoOnce(t, ctx, a, b.ID(), size)
	if _, ok := node.SpliceRelayOf(c.RemoteMultiaddr()); !ok {
		t.Errorf("the stream ran over %v, want the spliced connection", c.RemoteMultiaddr())
	}
	tstest.WaitFor(t, 10*time.Second, func() error {
		if open, sp := sn.Service.Spliced(); open < 1 || sp-splicedBefore < 2*size {
			return fmt.Errorf("supernode: %d splices open, %d bytes spliced, want ≥1 and ≥%d", open, sp-splicedBefore, 2*size)
		}
		return nil
	})
	if d := circuitBytes(sn) - before; d > 1<<20 {
		t.Errorf("the circuit carried %d bytes of the echo, want about none", d)
	}
	if l := sn.Service.Load(); l.Circuits < 2 {
		t.Errorf("Load().Circuits = %d, want the circuit and the splice counted", l.Circuits)
	}
}

// TestSpliceFallback: a supernode without the fast path leaves the
// circuit working.
func TestSpliceFallback(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	sn, a, b := relayedPair(t, ctx, relay.Config{SpliceListen: relay.SpliceOff}, true)
	c := echoOnce(t, ctx, a, b.ID(), 1<<20)
	if via, ok := node.RelayOf(c.RemoteMultiaddr()); !ok || via != sn.Node.ID() {
		t.Errorf("the stream ran over %v, want the circuit through %s", c.RemoteMultiaddr(), sn.Node.ID())
	}
	if spliced(a, b.ID()) != nil {
		t.Errorf("a spliced connection through a supernode without the fast path")
	}
}

// TestSpliceDiesStreamsFailOver: when the spliced connection dies, new
// streams take the circuit.
func TestSpliceDiesStreamsFailOver(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	_, a, b := relayedPair(t, ctx, relay.Config{}, true)
	tstest.WaitFor(t, 20*time.Second, func() error {
		if spliced(a, b.ID()) == nil {
			return fmt.Errorf("no spliced connection yet")
		}
		return nil
	})
	spliced(a, b.ID()).Close()
	c := echoOnce(t, ctx, a, b.ID(), 1<<20)
	if _, ok := node.RelayOf(c.RemoteMultiaddr()); !ok {
		if _, ok := node.SpliceRelayOf(c.RemoteMultiaddr()); !ok {
			t.Errorf("the stream ran over %v, want the circuit or a new splice", c.RemoteMultiaddr())
		}
	}
}

// TestSupernodeCannotImpersonate: whoever terminates the TCP connections
// instead of splicing them (the supernode, or someone holding a token)
// cannot complete the secure channel as either peer; the real pair can.
func TestSupernodeCannotImpersonate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	a, b, evil := nodetest.New(t), nodetest.New(t), nodetest.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	// pair returns two ends of a fresh TCP connection.
	pair := func() (dialled, accepted net.Conn) {
		t.Helper()
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		d, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return d, <-acc
	}
	upgrade := func(n *node.Node, c net.Conn, dir network.Direction, remote peer.ID) <-chan error {
		errc := make(chan error, 1)
		go func() { errc <- n.UpgradeSpliced(ctx, c, dir, remote, evil.ID()) }()
		return errc
	}
	tests := []struct {
		name        string
		victim      *node.Node
		victimDir   network.Direction
		victimWants peer.ID
		evilDir     network.Direction
	}{
		{"evil stands in for B before A", a, network.DirOutbound, b.ID(), network.DirInbound},
		{"evil stands in for A before B", b, network.DirInbound, a.ID(), network.DirOutbound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vc, ec := pair()
			verr := upgrade(tt.victim, vc, tt.victimDir, tt.victimWants)
			_ = upgrade(evil, ec, tt.evilDir, tt.victim.ID())
			err := <-verr
			if err == nil {
				t.Fatalf("the victim's upgrade succeeded against the supernode's key, want an authentication error")
			}
			if errors.Is(err, node.ErrNoSpliceTransport) || !strings.Contains(err.Error(), "security") {
				t.Fatalf("the victim's upgrade failed with %v, want a failed secure channel", err)
			}
			if conns := tt.victim.Network().ConnsToPeer(evil.ID()); len(conns) != 0 {
				t.Errorf("the victim holds %d connections to the supernode's key, want none", len(conns))
			}
		})
	}
	t.Run("the real pair", func(t *testing.T) {
		ac, bc := pair()
		aerr := upgrade(a, ac, network.DirOutbound, b.ID())
		berr := upgrade(b, bc, network.DirInbound, a.ID())
		if err := <-aerr; err != nil {
			t.Fatalf("A's upgrade: %v", err)
		}
		if err := <-berr; err != nil {
			t.Fatalf("B's upgrade: %v", err)
		}
		echo(b)
		c := echoOnce(t, ctx, a, b.ID(), 64<<10)
		if via, ok := node.SpliceRelayOf(c.RemoteMultiaddr()); !ok || via != evil.ID() {
			t.Errorf("stream over %v, want the spliced connection via %s", c.RemoteMultiaddr(), evil.ID())
		}
	})
}

// TestSpliceNeedsCertificate: a real supernode refuses a splice to a
// peer that has not presented its membership certificate there.
func TestSpliceNeedsCertificate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	iss := relaytest.NewIssuer(t)
	sn := iss.StartSupernode(t, relay.Config{})
	a, b := nodetest.New(t, node.WithNATImitation()), nodetest.New(t, node.WithNATImitation())
	if _, err := iss.Passport(t, b).Present(ctx, sn.Info()); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(ctx, sn.Info()); err != nil {
		t.Fatal(err)
	}
	ca := splice.StartClient(a)
	t.Cleanup(func() { ca.Close() })
	err := ca.Splice(ctx, b.ID(), sn.Node.ID())
	var re *splice.RequestError
	if !errors.As(err, &re) || re.Status != pb.Response_STATUS_NOT_ADMITTED {
		t.Fatalf("splice without a certificate: %v, want NOT_ADMITTED", err)
	}
	if open, bytes := sn.Service.Spliced(); open != 0 || bytes != 0 {
		t.Errorf("supernode: %d splices, %d bytes; want none", open, bytes)
	}
}

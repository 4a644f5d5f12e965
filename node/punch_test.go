package node

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

func testNode(t *testing.T, opts ...Option) *Node {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(append([]Option{WithKey(k), WithListenAddrs(LoopbackListenAddrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestPunchWatchdogSchedule checks when the watchdog retries hole
// punching for a peer reached only through a relay: after go-libp2p's own
// attempt had its grace, not while an attempt runs, with a gap between
// rounds, a bounded number of rounds, and never once a direct connection
// exists.
func TestPunchWatchdogSchedule(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := testNode(t, WithReachability(ReachabilityPublic))
	svc, err := relayv2.New(r, relayv2.WithInfiniteLimits())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	a := testNode(t, WithNATImitation())
	b := testNode(t, WithNATImitation())
	rinfo := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	if _, err := circuit.Reserve(ctx, b, rinfo); err != nil {
		t.Fatal(err)
	}
	circ := ma.StringCast(r.Addrs()[0].String() + "/p2p/" + r.ID().String() + "/p2p-circuit")
	a.Peerstore().AddAddr(b.ID(), circ, peerstore.TempAddrTTL)
	if err := a.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: b.ID()}); err != nil {
		t.Fatalf("relayed connect: %v", err)
	}
	p := a.puncher
	opened := a.Network().ConnsToPeer(b.ID())[0].Stat().Opened
	at := func(d time.Duration) time.Time { return opened.Add(d) }

	if p.due(b.ID(), at(time.Hour)) {
		t.Fatal("due for a peer that does not speak DCUtR")
	}
	a.Peerstore().AddProtocols(b.ID(), holepunch.Protocol)
	steps := []struct {
		at   time.Duration
		want bool
		why  string
	}{
		{time.Second, false, "within go-libp2p's grace (the dialing side waits longer)"},
		{punchGraceOutbound + time.Second, true, "first round"},
		{punchGraceOutbound + 2*time.Second, false, "while the round runs"},
	}
	for _, s := range steps {
		if got := p.due(b.ID(), at(s.at)); got != s.want {
			t.Fatalf("at %v: due = %v, want %v (%s)", s.at, got, s.want, s.why)
		}
	}
	p.Trace(&holepunch.Event{Remote: b.ID(), Evt: &holepunch.EndHolePunchEvt{Success: false}})
	for _, s := range []struct {
		at   time.Duration
		want bool
		why  string
	}{
		{punchGraceOutbound + punchRoundGap/2, false, "too soon after the first round"},
		{punchGraceOutbound + punchRoundGap + 2*time.Second, true, "second round"},
	} {
		if got := p.due(b.ID(), at(s.at)); got != s.want {
			t.Fatalf("at %v: due = %v, want %v (%s)", s.at, got, s.want, s.why)
		}
	}
	p.Trace(&holepunch.Event{Remote: b.ID(), Evt: &holepunch.ProtocolErrorEvt{Error: "protocols not supported"}})
	if p.due(b.ID(), at(time.Hour)) {
		t.Fatalf("due after %d rounds, want the pair left relayed", punchRounds)
	}
	if p.has(b.ID()) {
		t.Fatal("a failed punch marked the peer hole-punched")
	}
	// A successful punch (reported by go-libp2p's service, with the
	// direct connection it made) labels the path, and the watchdog never
	// runs beside a direct connection.
	p.trace(&holepunch.Event{Remote: b.ID(), Evt: &holepunch.EndHolePunchEvt{Success: true}}, true)
	if !p.has(b.ID()) {
		t.Fatal("a successful punch is not remembered")
	}
	c := testNode(t, WithReachability(ReachabilityPublic))
	if err := a.Connect(ctx, peer.AddrInfo{ID: c.ID(), Addrs: c.Addrs()}); err != nil {
		t.Fatal(err)
	}
	a.Peerstore().AddProtocols(c.ID(), holepunch.Protocol)
	if p.due(c.ID(), time.Now().Add(time.Hour)) {
		t.Error("due for a directly connected peer")
	}
}

// TestHolePunchEvent: a successful punch is announced on the event bus
// once, when it first labels the path.
func TestHolePunchEvent(t *testing.T) {
	a := testNode(t)
	b := testNode(t)
	sub, err := a.EventBus().Subscribe(new(EvtHolePunched))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if err := a.Connect(t.Context(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	a.puncher.Trace(&holepunch.Event{Remote: b.ID(), Evt: &holepunch.EndHolePunchEvt{Success: false}})
	a.puncher.Trace(&holepunch.Event{Remote: b.ID(), Evt: &holepunch.DirectDialEvt{Success: true}})
	a.puncher.Trace(&holepunch.Event{Remote: b.ID(), Evt: &holepunch.EndHolePunchEvt{Success: true}})
	select {
	case e := <-sub.Out():
		if got := e.(EvtHolePunched).Peer; got != b.ID() {
			t.Errorf("got an event for %s, want %s", got, b.ID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no hole punch event")
	}
	select {
	case e := <-sub.Out():
		t.Errorf("a second event for the same punch: %v", e)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestEndpointDependent: peers that saw the node at one IP address on
// different ports of a transport mean a symmetric NAT for that transport
// only; the same port from every peer (a cone NAT) does not.
func TestEndpointDependent(t *testing.T) {
	p := &puncher{observed: map[string]observation{}}
	see := func(addr string) {
		a := ma.StringCast(addr)
		p.observed[string(a.Bytes())] = observation{addr: a, observers: map[string]time.Time{"192.0.2.9": time.Now()}}
	}
	quicPeer := ma.StringCast("/ip4/203.0.113.5/udp/4001/quic-v1")
	tcpPeer := ma.StringCast("/ip4/203.0.113.5/tcp/4001")

	see("/ip4/198.51.100.4/udp/5000/quic-v1")
	see("/ip4/198.51.100.4/tcp/6000")
	if p.endpointDependent(quicPeer) || p.endpointDependent(tcpPeer) {
		t.Fatal("one sighting per transport counts as endpoint-dependent")
	}
	see("/ip4/198.51.100.4/tcp/6001")
	if !p.endpointDependent(tcpPeer) {
		t.Error("two TCP ports on one IP address are not endpoint-dependent")
	}
	if p.endpointDependent(quicPeer) {
		t.Error("TCP's ports decided UDP's NAT type")
	}
	see("/ip4/198.51.100.7/udp/5001/quic-v1") // another IP address: another NAT
	if p.endpointDependent(quicPeer) {
		t.Error("ports on two IP addresses count as one NAT's")
	}
}

// TestPunchSuccessNeedsDirectConn: DCUtR reports success when its dial
// returns a spliced connection (it takes it for direct); without a direct
// connection that does not mark the peer hole-punched.
func TestPunchSuccessNeedsDirectConn(t *testing.T) {
	p := &puncher{attempts: map[peer.ID]*punchState{}, punched: map[peer.ID]struct{}{}}
	id := peer.ID("bob")
	for _, evt := range []any{&holepunch.EndHolePunchEvt{Success: true}, &holepunch.DirectDialEvt{Success: true}} {
		if p.trace(&holepunch.Event{Remote: id, Evt: evt}, false) || p.has(id) {
			t.Errorf("%T success without a direct connection marked the peer hole-punched", evt)
		}
	}
	if !p.trace(&holepunch.Event{Remote: id, Evt: &holepunch.EndHolePunchEvt{Success: true}}, true) || !p.has(id) {
		t.Error("a success with a direct connection did not mark the peer hole-punched")
	}
}

package node_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitTimeout bounds each wait for a node to settle.
const waitTimeout = 10 * time.Second

func mustAddr(t *testing.T, s string) ma.Multiaddr {
	t.Helper()
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		t.Fatalf("multiaddr %q: %v", s, err)
	}
	return a
}

func TestNewOptionErrors(t *testing.T) {
	t.Parallel()
	key := nodetest.Key(t)
	idPath := filepath.Join(t.TempDir(), "identity.key")
	loopback := node.WithListenAddrs(node.LoopbackListenAddrs...)
	const badAddr = "/ip4/127.0.0.1/tcpx/0"

	cases := []struct {
		name string
		opts []node.Option
		want string
	}{
		{"identity then key", []node.Option{node.WithIdentity(idPath), node.WithKey(key), loopback}, "cannot specify multiple identities"},
		{"key then identity", []node.Option{node.WithKey(key), node.WithIdentity(idPath), loopback}, "cannot specify multiple identities"},
		{"two identities", []node.Option{node.WithIdentity(idPath), node.WithIdentity(idPath), loopback}, "cannot specify multiple identities"},
		{"bad listen address", []node.Option{node.WithKey(key), node.WithListenAddrs("/ip4/127.0.0.1/tcp/0", badAddr)}, badAddr},
		{"no identity", []node.Option{loopback}, "identity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := node.New(c.opts...)
			if err == nil {
				n.Close()
				t.Fatal("New succeeded")
			}
			if n != nil {
				t.Errorf("New returned a node along with error %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
		})
	}
}

func TestReachability(t *testing.T) {
	t.Parallel()
	pub := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	if got := pub.Reachability(); got != network.ReachabilityPublic {
		t.Errorf("public node reports %v", got)
	}
	nat := nodetest.New(t, node.WithNATImitation())
	if got := nat.Reachability(); got != network.ReachabilityPrivate {
		t.Errorf("NAT-imitating node reports %v", got)
	}
	priv := nodetest.New(t, node.WithReachability(node.ReachabilityPrivate))
	if got := priv.Reachability(); got != network.ReachabilityPrivate {
		t.Errorf("private node reports %v", got)
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	n, err := node.New(node.WithKey(nodetest.Key(t)), node.WithListenAddrs(node.LoopbackListenAddrs...), node.WithReachability(node.ReachabilityPublic))
	if err != nil {
		t.Fatal(err)
	}
	err1 := n.Close()
	err2 := n.Close()
	if err1 != nil {
		t.Errorf("first Close: %v", err1)
	}
	if err2 != nil {
		t.Errorf("second Close: %v", err2)
	}
	if !errors.Is(err2, err1) {
		t.Errorf("second Close returned %v, first %v", err2, err1)
	}
	if addrs := n.Network().ListenAddresses(); len(addrs) != 0 {
		t.Errorf("closed node still listens on %v", addrs)
	}
}

func TestRelayOf(t *testing.T) {
	relayID := nodetest.PeerID(t)
	target := nodetest.PeerID(t)
	cases := []struct {
		addr   string
		want   peer.ID
		wantOK bool
	}{
		{"/ip4/1.2.3.4/tcp/1/p2p/" + relayID.String() + "/p2p-circuit", relayID, true},
		{"/ip4/1.2.3.4/tcp/1/p2p/" + relayID.String() + "/p2p-circuit/p2p/" + target.String(), relayID, true},
		{"/ip4/1.2.3.4/udp/1/quic-v1/p2p/" + relayID.String() + "/p2p-circuit", relayID, true},
		{"/ip4/1.2.3.4/tcp/1", "", false},
		{"/ip4/1.2.3.4/tcp/1/p2p/" + target.String(), "", false},
		{"/p2p-circuit", "", false},
		{"/p2p-circuit/p2p/" + target.String(), "", false},
	}
	for _, c := range cases {
		t.Run(c.addr, func(t *testing.T) {
			got, ok := node.RelayOf(mustAddr(t, c.addr))
			if ok != c.wantOK || got != c.want {
				t.Errorf("RelayOf = %q, %v; want %q, %v", got, ok, c.want, c.wantOK)
			}
		})
	}
}

func TestPathTo(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	a := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	b := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))

	if p := a.PathTo(b.ID()); p.Kind != node.NotConnected || p.String() != "not connected" {
		t.Errorf("before connecting: PathTo = %+v (%q), want not connected", p, p)
	}
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	p := a.PathTo(b.ID())
	if p.Kind != node.Direct || p.String() != "direct" {
		t.Errorf("connected directly: PathTo = %+v (%q), want direct", p, p)
	}
	if p.Via != "" {
		t.Errorf("direct path has Via %s", p.Via)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if p := b.PathTo(a.ID()); p.Kind != node.Direct {
			return fmt.Errorf("b's path to a is %q, want direct: b does not see the connection", p)
		}
		return nil
	})

	if p := a.PathTo(nodetest.PeerID(t)); p.Kind != node.NotConnected || p.String() != "not connected" {
		t.Errorf("unknown peer: PathTo = %+v (%q), want not connected", p, p)
	}

	if err := a.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if p := a.PathTo(b.ID()); p.Kind != node.NotConnected {
			return fmt.Errorf("after ClosePeer the path is %q, want not connected", p)
		}
		return nil
	})
}

func TestPathString(t *testing.T) {
	via := nodetest.PeerID(t)
	cases := []struct {
		p    node.Path
		want string
	}{
		{node.Path{Kind: node.NotConnected}, "not connected"},
		{node.Path{Kind: node.Direct}, "direct"},
		{node.Path{Kind: node.HolePunched}, "holepunched"},
		{node.Path{Kind: node.Relayed, Via: via}, "relayed via " + via.String()},
	}
	for _, c := range cases {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v.String() = %q, want %q", c.p, got, c.want)
		}
	}
}

func isTCPOnly(a ma.Multiaddr) bool {
	_, errTCP := a.ValueForProtocol(ma.P_TCP)
	_, errCircuit := a.ValueForProtocol(ma.P_CIRCUIT)
	_, errWS := a.ValueForProtocol(ma.P_WS)
	return errTCP == nil && errCircuit != nil && errWS != nil
}

func sortedStrings(addrs []ma.Multiaddr) []string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	slices.Sort(s)
	return s
}

func TestNATImitationRefusesInboundDirect(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	nat := nodetest.New(t, node.WithNATImitation())
	pub := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))

	var tcpAddrs []ma.Multiaddr
	for _, a := range nat.Network().ListenAddresses() {
		if isTCPOnly(a) {
			tcpAddrs = append(tcpAddrs, a)
		}
	}
	if len(tcpAddrs) == 0 {
		t.Fatalf("NAT node has no TCP listen address among %v", nat.Network().ListenAddresses())
	}

	// Control: the same kind of dial to a node without NAT imitation works,
	// so the refusal below is the gater's doing.
	other := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	var otherTCP []ma.Multiaddr
	for _, a := range other.Network().ListenAddresses() {
		if isTCPOnly(a) {
			otherTCP = append(otherTCP, a)
		}
	}
	if err := pub.Connect(ctx, peer.AddrInfo{ID: other.ID(), Addrs: otherTCP}); err != nil {
		t.Fatalf("control: direct TCP dial to a public node at %v: %v", otherTCP, err)
	}

	err := pub.Connect(ctx, peer.AddrInfo{ID: nat.ID(), Addrs: tcpAddrs})
	if err == nil {
		t.Fatalf("inbound direct TCP connection to NAT-imitating node at %v succeeded", tcpAddrs)
	}
	if ctx.Err() != nil {
		t.Fatalf("dial failed only because the test timed out: %v", err)
	}
	if c := pub.Network().Connectedness(nat.ID()); c == network.Connected {
		t.Errorf("public node is connected to the NAT node after a refused dial")
	}
	if c := nat.Network().Connectedness(pub.ID()); c == network.Connected {
		t.Errorf("NAT node is connected to the public node after a refused dial")
	}

	// Outbound connections from behind the NAT are allowed.
	if err := nat.Connect(ctx, peer.AddrInfo{ID: pub.ID(), Addrs: pub.Addrs()}); err != nil {
		t.Fatalf("outbound connection from NAT-imitating node: %v", err)
	}
	if p := nat.PathTo(pub.ID()); p.Kind != node.Direct {
		t.Errorf("NAT node's outbound path = %v, want direct", p)
	}
}

func TestNATImitationAdvertisesOnlyCircuitAddrs(t *testing.T) {
	t.Parallel()
	nat := nodetest.New(t, node.WithNATImitation())

	if addrs := nat.Addrs(); len(addrs) != 0 {
		t.Errorf("NAT-imitating node advertises %v before any reservation, want nothing", addrs)
	}
	if addrs := nat.CircuitAddrs(); len(addrs) != 0 {
		t.Errorf("CircuitAddrs = %v before SetCircuitAddrs", addrs)
	}

	relayID := nodetest.PeerID(t)
	circuits := []ma.Multiaddr{
		mustAddr(t, "/ip4/127.0.0.1/tcp/4001/p2p/"+relayID.String()+"/p2p-circuit"),
		mustAddr(t, "/ip4/127.0.0.1/udp/4001/quic-v1/p2p/"+relayID.String()+"/p2p-circuit"),
	}
	in := slices.Clone(circuits)
	nat.SetCircuitAddrs(in)
	in[0] = mustAddr(t, "/ip4/9.9.9.9/tcp/1") // the node must have copied the slice

	want := sortedStrings(circuits)
	if got := sortedStrings(nat.CircuitAddrs()); !slices.Equal(got, want) {
		t.Errorf("CircuitAddrs = %v, want %v", got, want)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if got := sortedStrings(nat.Addrs()); !slices.Equal(got, want) {
			return fmt.Errorf("Addrs = %v, want the circuit addresses %v", got, want)
		}
		return nil
	})

	nat.SetCircuitAddrs(nil)
	tstest.WaitFor(t, waitTimeout, func() error {
		if got := nat.Addrs(); len(got) != 0 {
			return fmt.Errorf("after SetCircuitAddrs(nil) Addrs = %v, want nothing", got)
		}
		return nil
	})
}

func TestPublicNodeAdvertisesListenAndCircuitAddrs(t *testing.T) {
	t.Parallel()
	pub := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	before := pub.Addrs()
	if len(before) == 0 {
		t.Fatal("public node advertises no addresses")
	}
	circuit := mustAddr(t, "/ip4/127.0.0.1/tcp/4001/p2p/"+nodetest.PeerID(t).String()+"/p2p-circuit")
	pub.SetCircuitAddrs([]ma.Multiaddr{circuit})
	tstest.WaitFor(t, waitTimeout, func() error {
		got := pub.Addrs()
		if !slices.ContainsFunc(got, circuit.Equal) {
			return fmt.Errorf("Addrs = %v, want the circuit address %v among them", got, circuit)
		}
		for _, a := range before {
			if !slices.ContainsFunc(got, a.Equal) {
				return fmt.Errorf("Addrs = %v, want the listen address %v among them", got, a)
			}
		}
		return nil
	})
}

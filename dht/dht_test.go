package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	mh "github.com/multiformats/go-multihash"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// testTimeout bounds every test; the steps themselves wait on conditions
// (tstest.WaitFor, at most waitTimeout each), never on fixed delays.
const (
	testTimeout = 60 * time.Second
	waitTimeout = 30 * time.Second
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newNode starts a publicly reachable throwaway node (see nodetest.New).
func newNode(t *testing.T) *node.Node {
	t.Helper()
	return nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
}

func info(d *DHT) peer.AddrInfo {
	return peer.AddrInfo{ID: d.Host().ID(), Addrs: d.Host().Addrs()}
}

// newDHT starts a DHT on a new node; it is closed when the test ends.
func newDHT(t *testing.T, opts ...Option) *DHT {
	t.Helper()
	d, err := New(newNode(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newNetwork starts n DHT servers that bootstrap from the first and waits
// until each has a routing table.
func newNetwork(t *testing.T, n int, opts ...Option) []*DHT {
	t.Helper()
	ctx := testContext(t)
	first := newDHT(t, append([]Option{WithMode(ModeServer)}, opts...)...)
	ds := []*DHT{first}
	for range n - 1 {
		ds = append(ds, newDHT(t, append([]Option{WithMode(ModeServer), WithBootstrapPeers(info(first))}, opts...)...))
	}
	for _, d := range ds[1:] {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The first learns the others as they connect to it.
	if err := first.waitRoutingTable(ctx); err != nil {
		t.Fatal(err)
	}
	return ds
}

// client starts a client-mode DHT that bootstraps from the given servers.
func client(t *testing.T, from []*DHT, opts ...Option) *DHT {
	t.Helper()
	return joined(t, ModeClient, from, opts...)
}

// server starts a server-mode DHT that bootstraps from the given servers.
func server(t *testing.T, from []*DHT, opts ...Option) *DHT {
	t.Helper()
	return joined(t, ModeServer, from, opts...)
}

func joined(t *testing.T, mode Mode, from []*DHT, opts ...Option) *DHT {
	t.Helper()
	var boot []peer.AddrInfo
	for _, d := range from {
		boot = append(boot, info(d))
	}
	c := newDHT(t, append([]Option{WithMode(mode), WithBootstrapPeers(boot...)}, opts...)...)
	if err := c.Bootstrap(testContext(t)); err != nil {
		t.Fatal(err)
	}
	return c
}

func testCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	sum, err := mh.Sum([]byte(s), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, sum)
}

// TestPrivateNetwork checks that servers speak only the Parley protocol and
// find each other through a bootstrap peer.
func TestPrivateNetwork(t *testing.T) {
	t.Parallel()
	ds := newNetwork(t, 2)
	a, b := ds[0], ds[1]
	protos := a.Host().Mux().Protocols()
	if !slices.Contains(protos, protocol.ID(ProtocolID)) {
		t.Fatalf("node speaks %v, want %s among them", protos, ProtocolID)
	}
	if slices.Contains(protos, "/ipfs/kad/1.0.0") {
		t.Fatal("node speaks the public IPFS DHT protocol")
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if b.Kad().RoutingTable().Find(a.Host().ID()) == "" || a.Kad().RoutingTable().Find(b.Host().ID()) == "" {
			return fmt.Errorf("the routing tables do not hold each other: a has %v, b has %v", a.Kad().RoutingTable().ListPeers(), b.Kad().RoutingTable().ListPeers())
		}
		return nil
	})
	if !a.Server() || !b.Server() {
		t.Fatalf("servers report server mode %v, %v", a.Server(), b.Server())
	}
}

func TestModeFollowsReachability(t *testing.T) {
	t.Parallel()
	n := nodetest.New(t) // reachability left to AutoNAT: unknown, alone on loopback
	d, err := New(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if d.Server() {
		t.Fatal("server mode while reachability is unknown")
	}
	em, err := n.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPublic}); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if !d.Server() {
			return errors.New("client mode after reachability became public, want server mode")
		}
		return nil
	})
	if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityPrivate}); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if d.Server() {
			return errors.New("server mode after reachability became private, want client mode")
		}
		return nil
	})

	for _, tt := range []struct {
		mode   Mode
		server bool
	}{{ModeServer, true}, {ModeClient, false}} {
		d := newDHT(t, WithMode(tt.mode))
		if d.Server() != tt.server {
			t.Errorf("%s: Server() = %v", tt.mode, d.Server())
		}
	}
}

func TestBootstrapSources(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 3)
	calls := 0
	var mu sync.Mutex
	directory := func(context.Context) ([]peer.AddrInfo, error) {
		mu.Lock()
		calls++
		mu.Unlock()
		return []peer.AddrInfo{info(servers[1]), info(servers[2])}, nil
	}
	broken := func(context.Context) ([]peer.AddrInfo, error) {
		return nil, errors.New("rendezvous server down")
	}
	c := newDHT(t, WithMode(ModeClient), WithBootstrapFunc(broken), WithBootstrapFunc(directory))
	if err := c.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if calls == 0 {
		t.Error("the bootstrap func was never called")
	}
	mu.Unlock()
	tstest.WaitFor(t, waitTimeout, func() error {
		rt := c.Kad().RoutingTable()
		if rt.Find(servers[1].Host().ID()) == "" || rt.Find(servers[2].Host().ID()) == "" {
			return fmt.Errorf("the routing table holds %v, want the directory's peers %s and %s", rt.ListPeers(), servers[1].Host().ID(), servers[2].Host().ID())
		}
		return nil
	})

	alone := newDHT(t, WithMode(ModeClient), WithBootstrapFunc(broken))
	if err := alone.Bootstrap(ctx); err == nil {
		t.Fatal("Bootstrap without any reachable peer succeeded")
	}
	if _, err := alone.FindProviders(ctx, testCID(t, "x"), 1); !errors.Is(err, ErrNoPeers) {
		t.Fatalf("lookup without peers: got %v, want %v", err, ErrNoPeers)
	}
}

// TestRoutingTableRefills kills a server without warning and checks that
// the others drop it from their routing tables and still find the rest.
// The nodes listen on TCP only, so that dialling the dead one fails at
// once (a QUIC dial waits for its handshake timeout).
func TestRoutingTableRefills(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	tcpNode := func() *node.Node {
		n, err := node.New(node.WithKey(nodetest.Key(t)), node.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), node.WithReachability(node.ReachabilityPublic))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	var ds []*DHT
	for i := range 6 {
		var opts []Option
		if i > 0 {
			opts = append(opts, WithBootstrapPeers(info(ds[0])))
		}
		d, err := New(tcpNode(), append(opts, WithMode(ModeServer))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if i > 0 {
			if err := d.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		<-d.Kad().RefreshRoutingTable()
	}
	victim := ds[3]
	victim.Host().Close() // no goodbye: its connections just drop
	for _, d := range slices.Delete(slices.Clone(ds), 3, 4) {
		tstest.WaitFor(t, waitTimeout, func() error {
			if d.Kad().RoutingTable().Find(victim.Host().ID()) == "" {
				return nil
			}
			<-d.Kad().ForceRefresh() // queries the dead peer, which evicts it
			return fmt.Errorf("the dead server %s is still in %s's routing table", victim.Host().ID(), d.Host().ID())
		})
	}
	c := client(t, ds[:1])
	for _, d := range []*DHT{ds[1], ds[5]} {
		c.Host().Network().ClosePeer(d.Host().ID())
		if _, err := c.FindPeer(ctx, d.Host().ID()); err != nil {
			t.Errorf("after churn: %v", err)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	d := newDHT(t, WithAddressRecords(), WithRoutingTableService(nil))
	d.SetSupernode(true)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	d.SetSupernode(false) // no-op, no hang
	d.SetSupernode(true)  // refused after Close
	if _, err := d.FindPeer(ctx, nodetest.PeerID(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("FindPeer after Close: got %v, want %v", err, ErrClosed)
	}
	if err := d.Provide(ctx, testCID(t, "x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Provide after Close: got %v, want %v", err, ErrClosed)
	}
	for _, p := range []protocol.ID{ProtocolID, RoutingTableProtocolID} {
		if slices.Contains(d.Host().Mux().Protocols(), p) {
			t.Errorf("closed DHT still handles %s", p)
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	tests := []struct {
		name string
		opts []Option
	}{
		{"mode twice", []Option{WithMode(ModeServer), WithMode(ModeClient)}},
		{"unknown mode", []Option{WithMode(7)}},
		{"bootstrap peer without ID", []Option{WithBootstrapPeers(peer.AddrInfo{})}},
		{"nil bootstrap func", []Option{WithBootstrapFunc(nil)}},
		{"two sequence sources", []Option{WithSeq(ClockSeq()), WithSeq(ClockSeq())}},
		{"record lifetime too long", []Option{WithRecordLifetime(48 * time.Hour)}},
		{"record lifetime too short", []Option{WithRecordLifetime(time.Millisecond)}},
		{"reprovide slower than TTL", []Option{WithProviderRecordTTL(time.Hour), WithReprovideInterval(2 * time.Hour)}},
		{"routing table service twice", []Option{WithRoutingTableService(nil), WithRoutingTableService(nil)}},
		{"zero bootstrap interval", []Option{WithBootstrapInterval(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d, err := New(n, tt.opts...); err == nil {
				d.Close()
				t.Fatal("New accepted the options")
			}
		})
	}
}

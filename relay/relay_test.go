package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/relay"
)

const echoProto = protocol.ID("/parley-test/echo/1.0.0")

type supernode struct {
	node *node.Node
	sn   *relay.Supernode
}

func (s supernode) info() peer.AddrInfo {
	return peer.AddrInfo{ID: s.node.ID(), Addrs: s.node.Addrs()}
}

// close stops the relay service and then the node.
func (s supernode) close(t *testing.T) {
	t.Helper()
	if err := s.sn.Close(); err != nil {
		t.Errorf("close supernode relay: %v", err)
	}
	if err := s.node.Close(); err != nil {
		t.Errorf("close supernode node: %v", err)
	}
}

func startSupernode(t *testing.T) supernode {
	t.Helper()
	n := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	sn, err := relay.Start(n, nil, relay.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() }) // runs before the node's Close
	return supernode{node: n, sn: sn}
}

// source is a SupernodeSource over a slice the test can change.
type source struct {
	mu    sync.Mutex
	infos []peer.AddrInfo
}

func (s *source) set(infos ...peer.AddrInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.infos = slices.Clone(infos)
}

func (s *source) add(info peer.AddrInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.infos = append(s.infos, info)
}

func (s *source) list(context.Context) ([]peer.AddrInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.infos), nil
}

func startReserver(t *testing.T, n *node.Node, src relay.SupernodeSource, cfg relay.ReserverConfig) *relay.Reserver {
	t.Helper()
	r := relay.StartReserver(n, src, cfg)
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("close reserver: %v", err)
		}
	})
	return r
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or ctx ends; describe is called on
// timeout to explain the state.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool, describe func() string) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			msg := ""
			if describe != nil {
				msg = ": " + describe()
			}
			t.Fatalf("timed out waiting until %s%s", what, msg)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func relaysIn(addrs []ma.Multiaddr) []peer.ID {
	var ids []peer.ID
	for _, a := range addrs {
		if id, ok := node.RelayOf(a); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...peer.ID) []peer.ID {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func TestRelayedEchoThroughSupernode(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	sn := startSupernode(t)
	a := nodetest.New(t, node.WithNATImitation())
	b := nodetest.New(t, node.WithNATImitation())

	b.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
		}
	})

	src := &source{}
	src.set(sn.info())
	var changes [][]ma.Multiaddr
	var changesMu sync.Mutex
	r := startReserver(t, b, src.list, relay.ReserverConfig{
		Interval: time.Second,
		OnChange: func(addrs []ma.Multiaddr) {
			changesMu.Lock()
			changes = append(changes, addrs)
			changesMu.Unlock()
		},
	})
	waitFor(t, ctx, "B holds a reservation on the supernode", func() bool {
		return slices.Equal(r.Supernodes(), []peer.ID{sn.node.ID()}) && len(r.CircuitAddrs()) > 0 && len(b.CircuitAddrs()) > 0
	}, func() string {
		return fmt.Sprintf("Supernodes=%v reserver CircuitAddrs=%v node CircuitAddrs=%v", r.Supernodes(), r.CircuitAddrs(), b.CircuitAddrs())
	})

	want := relay.CircuitAddrs(sn.node.ID(), sn.node.Addrs())
	if len(want) == 0 {
		t.Fatalf("no circuit addresses for supernode addrs %v", sn.node.Addrs())
	}
	for _, got := range [][]ma.Multiaddr{r.CircuitAddrs(), b.CircuitAddrs()} {
		if g, w := relaysIn(got), []peer.ID{sn.node.ID()}; !slices.Equal(g, w) {
			t.Errorf("circuit addrs %v go through %v, want %v", got, g, w)
		}
		if len(got) != len(want) {
			t.Errorf("circuit addrs %v, want %v", got, want)
		}
	}
	waitFor(t, ctx, "B advertises only circuit addresses", func() bool {
		got := b.Addrs()
		return len(got) > 0 && len(relaysIn(got)) == 1 && !slices.ContainsFunc(got, func(a ma.Multiaddr) bool {
			_, ok := node.RelayOf(a)
			return !ok
		})
	}, func() string { return fmt.Sprintf("B.Addrs()=%v", b.Addrs()) })
	changesMu.Lock()
	if len(changes) == 0 || len(changes[len(changes)-1]) == 0 {
		t.Errorf("OnChange calls %v, want a last call with the circuit addresses", changes)
	}
	changesMu.Unlock()

	a.Peerstore().AddAddrs(b.ID(), want, peerstore.TempAddrTTL)
	s, err := a.NewStream(network.WithAllowLimitedConn(ctx, "test"), b.ID(), echoProto)
	if err != nil {
		t.Fatalf("open relayed stream: %v", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}

	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	writeErr := make(chan error, 1)
	go func() {
		_, err := s.Write(payload)
		if err == nil {
			err = s.CloseWrite()
		}
		writeErr <- err
	}()
	echo, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("read echo after %d bytes: %v", len(echo), err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("write payload: %v", err)
	}
	if !bytes.Equal(echo, payload) {
		t.Fatalf("echo of %d bytes differs from the %d-byte payload", len(echo), len(payload))
	}

	if _, ok := node.RelayOf(s.Conn().RemoteMultiaddr()); !ok {
		t.Errorf("stream ran over %v, not a relayed connection", s.Conn().RemoteMultiaddr())
	}
	p := a.PathTo(b.ID())
	if p.Kind != node.Relayed || p.Via != sn.node.ID() {
		t.Errorf("A.PathTo(B) = %+v, want relayed via %s", p, sn.node.ID())
	}
	if got, want := p.String(), "relayed via "+sn.node.ID().String(); got != want {
		t.Errorf("A.PathTo(B).String() = %q, want %q", got, want)
	}
	if p := b.PathTo(a.ID()); p.Kind != node.Relayed || p.Via != sn.node.ID() {
		t.Errorf("B.PathTo(A) = %+v, want relayed via %s", p, sn.node.ID())
	}

	waitFor(t, ctx, "the supernode's load counts the circuit and the relayed bytes", func() bool {
		l := sn.sn.Load()
		return l.Circuits >= 1 && l.BytesRelayed >= 2<<20
	}, func() string { return fmt.Sprintf("Load()=%v", sn.sn.Load()) })
}

func TestReserverFailover(t *testing.T) {
	ctx := testContext(t, 90*time.Second)
	sn1, sn2 := startSupernode(t), startSupernode(t)
	b := nodetest.New(t, node.WithNATImitation())

	src := &source{}
	src.set(sn1.info(), sn2.info())
	r := startReserver(t, b, src.list, relay.ReserverConfig{Want: 2, Interval: time.Second})
	state := func() string {
		return fmt.Sprintf("Supernodes=%v CircuitAddrs=%v", r.Supernodes(), r.CircuitAddrs())
	}

	waitFor(t, ctx, "reserved on both supernodes", func() bool {
		want := sortedIDs(sn1.node.ID(), sn2.node.ID())
		return slices.Equal(r.Supernodes(), want) && slices.Equal(relaysIn(r.CircuitAddrs()), want)
	}, state)

	start := time.Now()
	sn1.close(t)
	waitFor(t, ctx, "the closed supernode is dropped", func() bool {
		return !slices.Contains(r.Supernodes(), sn1.node.ID())
	}, state)
	t.Logf("closed supernode left Supernodes after %v", time.Since(start))
	waitFor(t, ctx, "the closed supernode's circuit addresses are withdrawn", func() bool {
		return !slices.Contains(relaysIn(r.CircuitAddrs()), sn1.node.ID()) &&
			!slices.Contains(relaysIn(b.CircuitAddrs()), sn1.node.ID())
	}, state)
	t.Logf("closed supernode's circuit addresses withdrawn after %v", time.Since(start))
	if got, want := r.Supernodes(), []peer.ID{sn2.node.ID()}; !slices.Equal(got, want) {
		t.Errorf("after failover Supernodes = %v, want %v", got, want)
	}

	// The directory still lists the dead supernode first; the reserver
	// must skip it and take the new one.
	sn3 := startSupernode(t)
	start = time.Now()
	src.add(sn3.info())
	waitFor(t, ctx, "reserved on the new supernode", func() bool {
		want := sortedIDs(sn2.node.ID(), sn3.node.ID())
		return slices.Equal(r.Supernodes(), want) &&
			slices.Equal(relaysIn(r.CircuitAddrs()), want) &&
			slices.Equal(relaysIn(b.CircuitAddrs()), want)
	}, state)
	t.Logf("reserved on new supernode after %v", time.Since(start))
}

func TestSupernodeLoadCountsReservations(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	sn := startSupernode(t)
	if l := sn.sn.Load(); l.Reservations != 0 || l.Circuits != 0 || l.BytesRelayed != 0 {
		t.Errorf("fresh supernode load %v, want zero", l)
	}
	b := nodetest.New(t, node.WithNATImitation())
	src := &source{}
	src.set(sn.info())
	r := startReserver(t, b, src.list, relay.ReserverConfig{Want: 1, Interval: time.Second})

	waitFor(t, ctx, "the supernode counts one reservation", func() bool {
		return sn.sn.Load().Reservations == 1
	}, func() string { return fmt.Sprintf("Load()=%v Supernodes=%v", sn.sn.Load(), r.Supernodes()) })
	waitFor(t, ctx, "the reserver has its reservation", func() bool {
		return slices.Equal(r.Supernodes(), []peer.ID{sn.node.ID()})
	}, nil)

	// A renewal is not a new reservation. The relay updates its counters
	// before it answers, so no polling is needed here.
	if _, err := circuit.Reserve(ctx, b, sn.info()); err != nil {
		t.Fatalf("renew reservation: %v", err)
	}
	if l := sn.sn.Load(); l.Reservations != 1 {
		t.Errorf("after a renewal Load().Reservations = %d, want 1", l.Reservations)
	}

	// A second client is counted.
	c := nodetest.New(t, node.WithNATImitation())
	if _, err := circuit.Reserve(ctx, c, sn.info()); err != nil {
		t.Fatalf("second client's reservation: %v", err)
	}
	if l := sn.sn.Load(); l.Reservations != 2 {
		t.Errorf("with two clients Load().Reservations = %d, want 2", l.Reservations)
	}

	// When a client goes away its reservation is released.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the departed client's reservation is released", func() bool {
		return sn.sn.Load().Reservations == 1
	}, func() string { return fmt.Sprintf("Load()=%v", sn.sn.Load()) })
}

func TestCircuitAddrsSkipsCircuitAddrs(t *testing.T) {
	relayID := nodetest.PeerID(t)
	other := nodetest.PeerID(t)
	mk := func(s string) ma.Multiaddr {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("multiaddr %q: %v", s, err)
		}
		return a
	}
	direct := []ma.Multiaddr{
		mk("/ip4/127.0.0.1/tcp/4001"),
		mk("/ip4/127.0.0.1/udp/4001/quic-v1"),
	}
	in := []ma.Multiaddr{
		direct[0],
		mk("/ip4/127.0.0.1/tcp/5001/p2p/" + other.String() + "/p2p-circuit"),
		direct[1],
		mk("/ip4/127.0.0.1/udp/5001/quic-v1/p2p/" + other.String() + "/p2p-circuit/p2p/" + relayID.String()),
	}
	got := relay.CircuitAddrs(relayID, in)
	var want []ma.Multiaddr
	for _, a := range direct {
		want = append(want, mk(a.String()+"/p2p/"+relayID.String()+"/p2p-circuit"))
	}
	if !slices.EqualFunc(got, want, ma.Multiaddr.Equal) {
		t.Fatalf("CircuitAddrs = %v, want %v", got, want)
	}
	for _, a := range got {
		if id, ok := node.RelayOf(a); !ok || id != relayID {
			t.Errorf("RelayOf(%v) = %s, %v; want %s", a, id, ok, relayID)
		}
	}
	if got := relay.CircuitAddrs(relayID, nil); len(got) != 0 {
		t.Errorf("CircuitAddrs of no addresses = %v", got)
	}
}

package relay_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
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
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/pb"
	"github.com/parleynet/parley/relay/relaytest"
)

const echoProto = protocol.ID("/parley-test/echo/1.0.0")

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

func (s *source) list(context.Context, map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.infos), nil
}

func startReserver(t *testing.T, n *node.Node, iss *relaytest.Issuer, src relay.SupernodeSource, cfg relay.ReserverConfig) *relay.Reserver {
	t.Helper()
	r := relay.StartReserver(n, src, iss.Passport(t, n), cfg)
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

// waitTimeout bounds each wait for a reserver or a supernode to settle;
// failover, which waits for a dead connection to be noticed, gets more.
const (
	waitTimeout     = 30 * time.Second
	failoverTimeout = 60 * time.Second
)

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

// echo serves echoProto on n.
func echo(n *node.Node) {
	n.SetStreamHandler(echoProto, func(s network.Stream) {
		defer s.Close()
		if _, err := io.Copy(s, s); err != nil {
			s.Reset()
		}
	})
}

// echoThrough sends size random bytes to b over a (possibly relayed)
// connection and checks they come back intact.
func echoThrough(t *testing.T, ctx context.Context, a *node.Node, b peer.ID, size int) network.Stream {
	t.Helper()
	s, err := a.NewStream(network.WithAllowLimitedConn(ctx, "test"), b, echoProto)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		s.SetDeadline(dl)
	}
	payload := make([]byte, size)
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
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("read echo after %d bytes: %v", len(got), err)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("write payload: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo of %d bytes differs from the %d-byte payload", len(got), len(payload))
	}
	return s
}

func TestRelayedEchoThroughSupernode(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	iss := relaytest.NewIssuer(t)
	sn := iss.StartSupernode(t, relay.Config{})
	a := nodetest.New(t, node.WithNATImitation())
	b := nodetest.New(t, node.WithNATImitation())
	echo(b)

	src := &source{}
	src.set(sn.Info())
	var changes [][]ma.Multiaddr
	var changesMu sync.Mutex
	r := startReserver(t, b, iss, src.list, relay.ReserverConfig{
		Interval: time.Second,
		OnChange: func(addrs []ma.Multiaddr) {
			changesMu.Lock()
			changes = append(changes, addrs)
			changesMu.Unlock()
		},
	})
	tstest.WaitFor(t, waitTimeout, func() error {
		if slices.Equal(r.Supernodes(), []peer.ID{sn.Node.ID()}) && len(r.CircuitAddrs()) > 0 && len(b.CircuitAddrs()) > 0 {
			return nil
		}
		return fmt.Errorf("B holds no reservation on the supernode yet: Supernodes=%v reserver CircuitAddrs=%v node CircuitAddrs=%v", r.Supernodes(), r.CircuitAddrs(), b.CircuitAddrs())
	})

	want := relay.CircuitAddrs(sn.Node.ID(), sn.Node.Addrs())
	if len(want) == 0 {
		t.Fatalf("no circuit addresses for supernode addrs %v", sn.Node.Addrs())
	}
	for _, got := range [][]ma.Multiaddr{r.CircuitAddrs(), b.CircuitAddrs()} {
		if g, w := relaysIn(got), []peer.ID{sn.Node.ID()}; !slices.Equal(g, w) {
			t.Errorf("circuit addrs %v go through %v, want %v", got, g, w)
		}
		if len(got) != len(want) {
			t.Errorf("circuit addrs %v, want %v", got, want)
		}
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		got := b.Addrs()
		if len(got) > 0 && len(relaysIn(got)) == 1 && !slices.ContainsFunc(got, func(a ma.Multiaddr) bool {
			_, ok := node.RelayOf(a)
			return !ok
		}) {
			return nil
		}
		return fmt.Errorf("B advertises %v, want only circuit addresses through one supernode", got)
	})
	changesMu.Lock()
	if len(changes) == 0 || len(changes[len(changes)-1]) == 0 {
		t.Errorf("OnChange calls %v, want a last call with the circuit addresses", changes)
	}
	changesMu.Unlock()

	// A must be admitted by B's supernode before it may open a circuit.
	if _, err := iss.Passport(t, a).Present(ctx, sn.Info()); err != nil {
		t.Fatalf("A presents its certificate: %v", err)
	}
	a.Peerstore().AddAddrs(b.ID(), want, peerstore.TempAddrTTL)
	s := echoThrough(t, ctx, a, b.ID(), 1<<20)
	if _, ok := node.RelayOf(s.Conn().RemoteMultiaddr()); !ok {
		t.Errorf("stream ran over %v, not a relayed connection", s.Conn().RemoteMultiaddr())
	}
	p := a.PathTo(b.ID())
	if p.Kind != node.Relayed || p.Via != sn.Node.ID() {
		t.Errorf("A.PathTo(B) = %+v, want relayed via %s", p, sn.Node.ID())
	}
	if got, want := p.String(), "relayed via "+sn.Node.ID().String(); got != want {
		t.Errorf("A.PathTo(B).String() = %q, want %q", got, want)
	}
	if p := b.PathTo(a.ID()); p.Kind != node.Relayed || p.Via != sn.Node.ID() {
		t.Errorf("B.PathTo(A) = %+v, want relayed via %s", p, sn.Node.ID())
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if l := sn.Service.Load(); l.Circuits < 1 || l.BytesRelayed < 2<<20 {
			return fmt.Errorf("the supernode's Load()=%v, want it to count the circuit and %d relayed bytes", l, 2<<20)
		}
		return nil
	})
}

// TestAdmission checks what a supernode admits: only a certificate its
// issuer signed, for the presenting peer, within its validity; and that
// without an admission there is no reservation and no circuit.
func TestAdmission(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	iss := relaytest.NewIssuer(t)
	forger := relaytest.NewIssuer(t)
	sn := iss.StartSupernode(t, relay.Config{})

	present := func(n *node.Node, c []byte) error {
		p := relay.NewPassport(n, func() []byte { return c })
		defer p.Close()
		_, err := p.Present(ctx, sn.Info())
		return err
	}
	reserve := func(n *node.Node) error {
		_, err := circuit.Reserve(ctx, n, sn.Info())
		return err
	}
	wantStatus := func(what string, err error, want pb.AuthResponse_Status) {
		t.Helper()
		var ae *relay.AuthError
		if !errors.As(err, &ae) || ae.Status != want {
			t.Errorf("%s: got %v, want an AuthError with %s", what, err, want)
		}
	}
	wantRefused := func(what string, err error) {
		t.Helper()
		var re circuit.ReservationError
		if !errors.As(err, &re) || re.Status != pbv2.Status_PERMISSION_DENIED {
			t.Errorf("%s: reservation got %v, want PERMISSION_DENIED", what, err)
		}
	}

	none := nodetest.New(t, node.WithNATImitation())
	wantRefused("no certificate presented", reserve(none))
	if err := present(none, nil); !errors.Is(err, relay.ErrNoCertificate) {
		t.Errorf("presenting nothing: got %v, want ErrNoCertificate", err)
	}

	forged := nodetest.New(t, node.WithNATImitation())
	wantStatus("certificate from another issuer", present(forged, forger.Cert(t, forged.ID(), time.Hour)), pb.AuthResponse_STATUS_INVALID)
	wantRefused("after a forged certificate", reserve(forged))

	tampered := nodetest.New(t, node.WithNATImitation())
	c := iss.Cert(t, tampered.ID(), time.Hour)
	c[len(c)-1] ^= 1
	wantStatus("tampered certificate", present(tampered, c), pb.AuthResponse_STATUS_INVALID)

	thief := nodetest.New(t, node.WithNATImitation())
	victim := nodetest.PeerID(t)
	wantStatus("someone else's certificate", present(thief, iss.Cert(t, victim, time.Hour)), pb.AuthResponse_STATUS_INVALID)
	wantRefused("after presenting someone else's certificate", reserve(thief))

	late := nodetest.New(t, node.WithNATImitation())
	old, err := iss.Issue(late.ID(), "late", time.Now().Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	wantStatus("expired certificate", present(late, old.Raw), pb.AuthResponse_STATUS_EXPIRED)
	wantRefused("after an expired certificate", reserve(late))

	garbage := nodetest.New(t, node.WithNATImitation())
	wantStatus("garbage", present(garbage, []byte("not a certificate")), pb.AuthResponse_STATUS_INVALID)

	// The same peers, properly certified, get a slot.
	good := nodetest.New(t, node.WithNATImitation())
	if err := present(good, iss.Cert(t, good.ID(), time.Hour)); err != nil {
		t.Fatalf("valid certificate: %v", err)
	}
	if err := reserve(good); err != nil {
		t.Fatalf("reservation after admission: %v", err)
	}

	// A circuit needs the source admitted too: good holds a slot, and an
	// uncertified peer may not dial it through the supernode.
	echo(good)
	stranger := nodetest.New(t, node.WithNATImitation())
	stranger.Peerstore().AddAddrs(good.ID(), relay.CircuitAddrs(sn.Node.ID(), sn.Node.Addrs()), peerstore.TempAddrTTL)
	if s, err := stranger.NewStream(network.WithAllowLimitedConn(ctx, "test"), good.ID(), echoProto); err == nil {
		s.Close()
		t.Error("an uncertified peer opened a circuit through the supernode")
	}
	friend := nodetest.New(t, node.WithNATImitation())
	if err := present(friend, iss.Cert(t, friend.ID(), time.Hour)); err != nil {
		t.Fatal(err)
	}
	friend.Peerstore().AddAddrs(good.ID(), relay.CircuitAddrs(sn.Node.ID(), sn.Node.Addrs()), peerstore.TempAddrTTL)
	echoThrough(t, ctx, friend, good.ID(), 64<<10)
}

// TestAdmissionBadRequests sends malformed and oversized auth requests:
// each gets a typed answer or a reset, and the supernode keeps serving.
func TestAdmissionBadRequests(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	iss := relaytest.NewIssuer(t)
	sn := iss.StartSupernode(t, relay.Config{})
	c := nodetest.New(t)
	c.Peerstore().AddAddrs(sn.Node.ID(), sn.Node.Addrs(), peerstore.TempAddrTTL)

	exchange := func(raw []byte) (*pb.AuthResponse, error) {
		s, err := c.NewStream(ctx, sn.Node.ID(), relay.AuthProtocol)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		s.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := s.Write(raw); err != nil {
			return nil, err
		}
		s.CloseWrite()
		resp := new(pb.AuthResponse)
		err = wire.NewReader(s, 4096).Read(resp)
		return resp, err
	}
	for _, tt := range []struct {
		name string
		raw  []byte
	}{
		{"empty stream", nil},
		{"truncated frame", []byte{0x20, 0x0a}},
		{"not protobuf", []byte{0x03, 0xff, 0xff, 0xff}},
		{"oversized length", []byte{0xff, 0xff, 0x03}},
		{"empty request", []byte{0x00}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := exchange(tt.raw)
			if err != nil {
				t.Fatalf("got %v, want a BAD_REQUEST answer", err)
			}
			if resp.GetStatus() != pb.AuthResponse_STATUS_BAD_REQUEST || resp.GetMessage() == "" {
				t.Errorf("got %v %q, want BAD_REQUEST with a message", resp.GetStatus(), resp.GetMessage())
			}
		})
	}
	// Still serving.
	if _, err := iss.Passport(t, c).Present(ctx, sn.Info()); err != nil {
		t.Fatalf("valid certificate after bad requests: %v", err)
	}
}

func TestAdmissionRateLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	iss := relaytest.NewIssuer(t)
	limits := relay.DefaultLimits()
	limits.AuthPerPeer.Burst = 3
	sn := iss.StartSupernode(t, relay.Config{Limits: limits})
	c := nodetest.New(t)
	p := iss.Passport(t, c)
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		_, err = p.Present(ctx, sn.Info())
	}
	var ae *relay.AuthError
	if !errors.As(err, &ae) || ae.Status != pb.AuthResponse_STATUS_RATE_LIMITED || ae.RetryAfter <= 0 {
		t.Fatalf("fourth presentation: got %v, want RATE_LIMITED with a retry hint", err)
	}
}

func TestReserverFailover(t *testing.T) {
	t.Parallel()
	iss := relaytest.NewIssuer(t)
	sn1, sn2 := iss.StartSupernode(t, relay.Config{}), iss.StartSupernode(t, relay.Config{})
	b := nodetest.New(t, node.WithNATImitation())

	src := &source{}
	src.set(sn1.Info(), sn2.Info())
	r := startReserver(t, b, iss, src.list, relay.ReserverConfig{Want: 2, Interval: time.Second})
	state := func() string {
		return fmt.Sprintf("Supernodes=%v CircuitAddrs=%v", r.Supernodes(), r.CircuitAddrs())
	}

	tstest.WaitFor(t, waitTimeout, func() error {
		want := sortedIDs(sn1.Node.ID(), sn2.Node.ID())
		if slices.Equal(r.Supernodes(), want) && slices.Equal(relaysIn(r.CircuitAddrs()), want) {
			return nil
		}
		return fmt.Errorf("not reserved on both supernodes %v: %s", want, state())
	})

	// A crash: the supernode's host goes away without a word.
	start := time.Now()
	sn1.Service.Close()
	sn1.Node.Close()
	tstest.WaitFor(t, failoverTimeout, func() error {
		if !slices.Contains(r.Supernodes(), sn1.Node.ID()) &&
			!slices.Contains(relaysIn(r.CircuitAddrs()), sn1.Node.ID()) &&
			!slices.Contains(relaysIn(b.CircuitAddrs()), sn1.Node.ID()) {
			return nil
		}
		return fmt.Errorf("the crashed supernode %s's circuit addresses are not withdrawn: %s node CircuitAddrs=%v", sn1.Node.ID(), state(), b.CircuitAddrs())
	})
	t.Logf("crashed supernode's circuit addresses withdrawn after %v", time.Since(start))
	if got, want := r.Supernodes(), []peer.ID{sn2.Node.ID()}; !slices.Equal(got, want) {
		t.Errorf("after failover Supernodes = %v, want %v", got, want)
	}

	// The directory still lists the dead supernode first; the reserver
	// must skip it and take the new one.
	sn3 := iss.StartSupernode(t, relay.Config{})
	start = time.Now()
	src.add(sn3.Info())
	tstest.WaitFor(t, failoverTimeout, func() error {
		want := sortedIDs(sn2.Node.ID(), sn3.Node.ID())
		if slices.Equal(r.Supernodes(), want) &&
			slices.Equal(relaysIn(r.CircuitAddrs()), want) &&
			slices.Equal(relaysIn(b.CircuitAddrs()), want) {
			return nil
		}
		return fmt.Errorf("not reserved on the new supernode, want %v: %s node CircuitAddrs=%v", want, state(), b.CircuitAddrs())
	})
	t.Logf("reserved on new supernode after %v", time.Since(start))
}

// TestShutdownLetsClientsMove: a supernode that leaves gracefully tells
// its clients, which reserve elsewhere and publish the new addresses
// before it goes; Shutdown returns once they did, well before its grace.
func TestShutdownLetsClientsMove(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	iss := relaytest.NewIssuer(t)
	sn1, sn2, sn3 := iss.StartSupernode(t, relay.Config{}), iss.StartSupernode(t, relay.Config{}), iss.StartSupernode(t, relay.Config{})
	b := nodetest.New(t, node.WithNATImitation())
	src := &source{}
	src.set(sn1.Info(), sn2.Info())
	r := startReserver(t, b, iss, src.list, relay.ReserverConfig{Want: 2, Interval: 30 * time.Second})
	tstest.WaitFor(t, waitTimeout, func() error {
		if want := sortedIDs(sn1.Node.ID(), sn2.Node.ID()); !slices.Equal(r.Supernodes(), want) {
			return fmt.Errorf("not reserved on sn1 and sn2 %v: Supernodes=%v CircuitAddrs=%v", want, r.Supernodes(), r.CircuitAddrs())
		}
		return nil
	})

	src.set(sn2.Info(), sn3.Info()) // the directory stopped listing sn1
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	if err := sn1.Service.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	// The interval is 30 s: only the notice can have moved the client.
	want := sortedIDs(sn2.Node.ID(), sn3.Node.ID())
	if got := relaysIn(b.CircuitAddrs()); !slices.Equal(got, want) {
		t.Errorf("when Shutdown returned the client advertised circuits through %v, want %v", got, want)
	}
	if took > 15*time.Second {
		t.Errorf("Shutdown took %v: it waited for its grace instead of the client's acknowledgement", took)
	}
	t.Logf("client moved and acknowledged in %v", took)
	// sn1 admits nobody any more.
	other := nodetest.New(t)
	if _, err := iss.Passport(t, other).Present(ctx, sn1.Info()); err == nil {
		t.Error("a supernode that left admitted a new peer")
	}
}

func TestSupernodeLoadCountsReservations(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	iss := relaytest.NewIssuer(t)
	sn := iss.StartSupernode(t, relay.Config{})
	if l := sn.Service.Load(); l.Reservations != 0 || l.Circuits != 0 || l.BytesRelayed != 0 {
		t.Errorf("fresh supernode load %v, want zero", l)
	}
	if l := sn.Service.Load(); l.MaxReservations != uint32(relay.DefaultLimits().MaxReservations) {
		t.Errorf("announced capacity %d, want %d", l.MaxReservations, relay.DefaultLimits().MaxReservations)
	}

	b := nodetest.New(t, node.WithNATImitation())
	src := &source{}
	src.set(sn.Info())
	r := startReserver(t, b, iss, src.list, relay.ReserverConfig{Want: 1, Interval: time.Second})
	tstest.WaitFor(t, waitTimeout, func() error {
		if l := sn.Service.Load(); l.Reservations != 1 {
			return fmt.Errorf("the supernode's Load()=%v, want one reservation; Supernodes=%v", l, r.Supernodes())
		}
		return nil
	})
	tstest.WaitFor(t, waitTimeout, func() error {
		if got, want := r.Supernodes(), []peer.ID{sn.Node.ID()}; !slices.Equal(got, want) {
			return fmt.Errorf("the reserver has no reservation: Supernodes=%v, want %v", got, want)
		}
		return nil
	})

	// A renewal is not a new reservation. The relay updates its counters
	// before it answers, so no polling is needed here.
	if _, err := circuit.Reserve(ctx, b, sn.Info()); err != nil {
		t.Fatalf("renew reservation: %v", err)
	}
	if l := sn.Service.Load(); l.Reservations != 1 {
		t.Errorf("after a renewal Load().Reservations = %d, want 1", l.Reservations)
	}

	// A second client is counted.
	c := nodetest.New(t, node.WithNATImitation())
	if _, err := iss.Passport(t, c).Present(ctx, sn.Info()); err != nil {
		t.Fatal(err)
	}
	if _, err := circuit.Reserve(ctx, c, sn.Info()); err != nil {
		t.Fatalf("second client's reservation: %v", err)
	}
	if l := sn.Service.Load(); l.Reservations != 2 {
		t.Errorf("with two clients Load().Reservations = %d, want 2", l.Reservations)
	}

	// When a client goes away its reservation is released.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		if l := sn.Service.Load(); l.Reservations != 1 {
			return fmt.Errorf("the departed client's reservation is not released: Load()=%v, want one reservation", l)
		}
		return nil
	})
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

package chat

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/contacts/contactstest"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/relaytest"
)

// sameOrder checks that both histories hold the same n messages between
// alice and bob, in the same order, each once; alice's all delivered.
func sameOrder(t *testing.T, ctx context.Context, alice, bob *user, n int) (mine, theirs []Message) {
	t.Helper()
	mine, err := alice.hist.With(ctx, "bob", n+10, "")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err = bob.hist.With(ctx, "alice", n+10, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != n || len(theirs) != n {
		t.Fatalf("alice has %d messages, bob %d; want %d each", len(mine), len(theirs), n)
	}
	for i := range mine {
		if mine[i].State != Delivered {
			t.Fatalf("alice's message %d (%q): state %s, want delivered", i, mine[i].Body, mine[i].State)
		}
		if mine[i].ID != theirs[i].ID {
			t.Fatalf("message %d: alice has %q, bob %q: order differs", i, mine[i].Body, theirs[i].Body)
		}
	}
	return mine, theirs
}

// TestConcurrentSendsArePipelinedInOrder: many Sends at once share one
// stream; each is settled from its own ack, and both histories agree on
// the order.
func TestConcurrentSendsArePipelinedInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)
	const senders, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m, err := alice.svc.Send(ctx, "bob", fmt.Sprintf("%d/%d", g, i))
				if err == nil && (m.State != Delivered || m.Path != "direct") {
					err = fmt.Errorf("got %+v, want delivered direct", m)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, theirs := sameOrder(t, ctx, alice, bob, senders*each)
	// Each sender's own messages keep its order.
	last := map[string]int{}
	for _, m := range theirs {
		g, i, _ := strings.Cut(m.Body, "/")
		var n int
		fmt.Sscan(i, &n)
		if prev, ok := last[g]; ok && n != prev+1 {
			t.Fatalf("sender %s: message %d after %d", g, n, prev)
		}
		last[g] = n
	}
	bob.mu.Lock()
	defer bob.mu.Unlock()
	if len(bob.got) != senders*each {
		t.Fatalf("OnMessage called %d times, want %d", len(bob.got), senders*each)
	}
}

// TestOrderAndExactlyOnceAcrossReconnect: the connection is cut while a
// long outbox is on the wire (more than a window); the unacknowledged
// messages go again on a new stream, the recipient drops the copies it
// has, and both histories agree on one order.
func TestOrderAndExactlyOnceAcrossReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	contacts := befriend(alice, bob)
	contacts.Set("bob", "")
	const n = 3 * Window
	var ids []string
	var msgs []Message
	for i := range n {
		msgs = append(msgs, Message{ID: newID(), From: "alice", To: "bob", Sent: time.UnixMilli(time.Now().UnixMilli()), Body: fmt.Sprint(i), State: Queued})
		ids = append(ids, msgs[i].ID)
	}
	if _, err := alice.hist.AddAll(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	// Cut every connection once bob has stored some, with more on the wire.
	var received atomic.Int32
	var cut atomic.Bool
	bob.svc.OnMessage(func(Message) {
		if received.Add(1) == Window/2 && cut.CompareAndSwap(false, true) {
			go bob.node.Network().ClosePeer(alice.node.ID())
		}
	})
	contacts.Set("bob", bob.node.ID())
	for attempt := 0; ; attempt++ {
		q, _ := alice.hist.Outbox(ctx, "bob")
		if len(q) == 0 {
			break
		}
		if attempt > 5 {
			t.Fatalf("%d messages still queued after %d flushes", len(q), attempt)
		}
		if _, err := alice.svc.Flush(ctx, "bob"); err != nil {
			t.Logf("flush %d: %v", attempt, err)
		}
	}
	if !cut.Load() {
		t.Fatal("the connection was never cut")
	}
	mine, _ := sameOrder(t, ctx, alice, bob, n)
	for i, m := range mine {
		if m.ID != ids[i] {
			t.Fatalf("alice's message %d is %q, want %q", i, m.Body, fmt.Sprint(i))
		}
	}
	if got := received.Load(); got != n {
		t.Fatalf("OnMessage called %d times, want %d (exactly once each)", got, n)
	}
}

// blackhole is a TCP forwarder to a node's TCP address that can stop
// passing bytes either way while keeping the sockets open: a path that
// stops answering, as a hole-punched one does when a NAT drops its
// mapping.
type blackhole struct {
	ln    net.Listener
	to    string
	dead  atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startBlackhole(t *testing.T, to string) *blackhole {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, to: to}
	b.wg.Go(b.accept)
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

func (b *blackhole) addr() ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", b.ln.Addr().(*net.TCPAddr).Port))
}

func (b *blackhole) accept() {
	for {
		in, err := b.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", b.to)
		if err != nil {
			in.Close()
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, in, out)
		b.mu.Unlock()
		b.wg.Go(func() { b.pipe(out, in) })
		b.wg.Go(func() { b.pipe(in, out) })
	}
}

// pipe copies src to dst until the blackhole is dead, then swallows src.
func (b *blackhole) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !b.dead.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) || b.dead.Load() {
				return
			}
			dst.Close()
			return
		}
	}
}

func tcpAddrOf(t *testing.T, n *node.Node) string {
	for _, a := range n.Addrs() {
		if node.IsCircuit(a) {
			continue
		}
		if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return "127.0.0.1:" + port
		}
	}
	t.Fatalf("node %s has no TCP address", n.ID())
	return ""
}

// relayedSetup starts a supernode bob holds a reservation on, and alice
// and bob, public, with alice knowing bob at a forwarder (direct) and at
// his circuit address. The chat services are started.
func relayedSetup(t *testing.T, ctx context.Context) (alice, bob *user, sn relaytest.Supernode, hole *blackhole) {
	iss := relaytest.NewIssuer(t)
	sn = iss.StartSupernode(t, relay.Config{})
	alice, bob = newUser(t, "alice"), newUser(t, "bob")
	source := func(context.Context, map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
		return []peer.AddrInfo{sn.Info()}, nil
	}
	r := relay.StartReserver(bob.node, source, iss.Passport(t, bob.node), relay.ReserverConfig{Interval: time.Second})
	t.Cleanup(func() { r.Close() })
	tstest.WaitFor(t, time.Minute, func() error {
		if len(r.CircuitAddrs()) == 0 {
			return errors.New("bob has no reservation on the supernode")
		}
		return nil
	})
	if _, err := iss.Passport(t, alice.node).Present(ctx, sn.Info()); err != nil {
		t.Fatal(err)
	}
	hole = startBlackhole(t, tcpAddrOf(t, bob.node))
	b := contactstest.New(map[string]peer.ID{"alice": alice.node.ID(), "bob": bob.node.ID()})
	for _, u := range []*user{alice, bob} {
		u.svc = NewService(u.node, u.hist, b, func() string { return u.name }, nil)
		t.Cleanup(func() { u.svc.Close() })
	}
	// The first connection goes through the forwarder.
	if err := alice.node.Connect(ctx, peer.AddrInfo{ID: bob.node.ID(), Addrs: []ma.Multiaddr{hole.addr()}}); err != nil {
		t.Fatal(err)
	}
	// Then alice learns the circuit address (learnt first, it could win
	// the dial above).
	alice.node.Peerstore().AddAddrs(bob.node.ID(), r.CircuitAddrs(), time.Hour)
	return alice, bob, sn, hole
}

// TestDeadDirectPathFallsBackToRelayFast: the direct connection a
// conversation runs on stops answering (its packets are dropped, nothing
// closes); the next message goes through the supernode within 5 s, and
// is labelled so on both sides, the sender's connection to bob being a
// limited (relayed) one.
func TestDeadDirectPathFallsBackToRelayFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob, sn, hole := relayedSetup(t, ctx)
	relayed := "relayed via " + sn.Node.ID().String()

	before, err := alice.svc.Send(ctx, "bob", "before")
	if err != nil || before.State != Delivered || before.Path != "direct" {
		t.Fatalf("before the path dies: got %+v, %v; want delivered direct", before, err)
	}
	hole.dead.Store(true)
	start := time.Now()
	after, err := alice.svc.Send(ctx, "bob", "after")
	took := time.Since(start)
	if err != nil || after.State != Delivered || after.Path != relayed {
		t.Fatalf("after the path died: got %+v, %v; want delivered %s", after, err, relayed)
	}
	if took > 5*time.Second {
		t.Fatalf("fallback took %v, want under 5s", took)
	}
	t.Logf("fallback to the relay took %v", took)
	// Independent signals: bob labels the message from the connection
	// it arrived on, and alice's connection to bob is a limited one.
	theirs, _ := bob.hist.With(ctx, "alice", 10, "")
	if len(theirs) != 2 || theirs[0].Path != "direct" || theirs[1].ID != after.ID || theirs[1].Path != relayed {
		t.Fatalf("bob's history: %+v", theirs)
	}
	conns := alice.node.Network().ConnsToPeer(bob.node.ID())
	if !slices.ContainsFunc(conns, func(c network.Conn) bool { return node.IsCircuit(c.RemoteMultiaddr()) }) {
		var addrs []string
		for _, c := range conns {
			addrs = append(addrs, fmt.Sprintf("%s limited=%v", c.RemoteMultiaddr(), c.Stat().Limited))
		}
		t.Fatalf("alice has no relayed connection to bob: %v", addrs)
	}
	// What the app's path watcher reads now: not the dead direct
	// connection (a new hole punch would be fine).
	if got := alice.node.PathTo(bob.node.ID()); got.Kind != node.Relayed && got.Kind != node.HolePunched {
		t.Fatalf("alice's path to bob is %s after the fallback", got)
	}
	// Later messages keep the order across the two paths.
	if m, err := alice.svc.Send(ctx, "bob", "later"); err != nil || m.State != Delivered {
		t.Fatalf("later: %+v, %v", m, err)
	}
	sameOrder(t, ctx, alice, bob, 3)
}

// TestBurstOfLargeMessages: a burst of the largest messages goes through
// with at most MaxInflightBytes unacknowledged, and in order.
func TestBurstOfLargeMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	contacts := befriend(alice, bob)
	contacts.Set("bob", "")
	const n = 60 // about 1 MiB, eight times MaxInflightBytes
	for i := range n {
		if m, err := alice.svc.Send(ctx, "bob", fmt.Sprintf("%03d", i)+strings.Repeat("x", MaxBodySize-3)); err != nil || m.State != Queued {
			t.Fatalf("queue %d: %+v, %v", i, m.State, err)
		}
	}
	contacts.Set("bob", bob.node.ID())
	settled, err := alice.svc.Flush(ctx, "bob")
	if err != nil || len(settled) != n {
		t.Fatalf("flush: %d settled, %v; want %d", len(settled), err, n)
	}
	_, theirs := sameOrder(t, ctx, alice, bob, n)
	for i, m := range theirs {
		if !strings.HasPrefix(m.Body, fmt.Sprintf("%03d", i)) {
			t.Fatalf("bob's message %d starts %q", i, m.Body[:3])
		}
	}
}

// TestDeadPathWithoutRelayQueuesFast: with no supernode to fall back to,
// a message sent on a path that stopped answering comes back queued
// within AckTimeout + RedialTimeout, not after the transport's 30 s.
func TestDeadPathWithoutRelayQueuesFast(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	hole := startBlackhole(t, tcpAddrOf(t, bob.node))
	b := contactstest.New(map[string]peer.ID{"alice": alice.node.ID(), "bob": bob.node.ID()})
	for _, u := range []*user{alice, bob} {
		u.svc = NewService(u.node, u.hist, b, func() string { return u.name }, nil)
		t.Cleanup(func() { u.svc.Close() })
	}
	if err := alice.node.Connect(ctx, peer.AddrInfo{ID: bob.node.ID(), Addrs: []ma.Multiaddr{hole.addr()}}); err != nil {
		t.Fatal(err)
	}
	if m, err := alice.svc.Send(ctx, "bob", "before"); err != nil || m.State != Delivered {
		t.Fatalf("before: %+v, %v", m, err)
	}
	hole.dead.Store(true)
	// Only the dead forwarder is known, not bob's own addresses.
	alice.node.Peerstore().ClearAddrs(bob.node.ID())
	alice.node.Peerstore().AddAddrs(bob.node.ID(), []ma.Multiaddr{hole.addr()}, time.Hour)
	start := time.Now()
	m, err := alice.svc.Send(ctx, "bob", "after")
	took := time.Since(start)
	if err != nil || m.State != Queued {
		t.Fatalf("after: %+v, %v; want queued", m, err)
	}
	if limit := AckTimeout + RedialTimeout + time.Second; took > limit {
		t.Fatalf("queued after %v, want under %v", took, limit)
	}
	t.Logf("queued after %v", took)
}

// TestV1SenderIsAnswered: a sender of the previous release (one stream
// per message, its write side closed after the message) is answered.
func TestV1SenderIsAnswered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)
	st, err := alice.node.NewStream(ctx, bob.node.ID(), ProtocolV1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := wire.Write(st, &pb.Message{Id: "v1", Sender: "alice", Body: "old"}, MaxFrameSize); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	ack := new(pb.Ack)
	if err := wire.NewReader(st, MaxFrameSize).Read(ack); err != nil || ack.Id != "v1" || ack.Status != pb.Status_STATUS_DELIVERED {
		t.Fatalf("ack: %v, %v", ack, err)
	}
	if got, _ := bob.hist.With(ctx, "alice", 10, ""); len(got) != 1 || got[0].ID != "v1" {
		t.Fatalf("bob's history: %+v", got)
	}
}

// TestCloseStopsEveryGoroutine: Close ends conversations, ack readers
// and stream handlers, busy or idle, and waits for them.
func TestCloseStopsEveryGoroutine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(alice, bob)
	if m, err := alice.svc.Send(ctx, "bob", "hello"); err != nil || m.State != Delivered {
		t.Fatalf("send: %+v, %v", m, err)
	}
	// A send in flight when the services close.
	sent := make(chan error, 1)
	go func() {
		_, err := alice.svc.Send(ctx, "bob", "in flight")
		sent <- err
	}()
	alice.svc.Close()
	bob.svc.Close()
	<-sent
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if strings.Contains(stacks, "parley/app/chat.(*") {
		t.Fatalf("chat goroutines left after Close:\n%s", stacks)
	}
	if _, err := alice.svc.Send(ctx, "bob", "after"); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after Close: %v, want ErrClosed", err)
	}
}

// TestOpenStreamFollowsPresence: once presence says the contact is
// offline, an open stream to its device is not used any more.
func TestOpenStreamFollowsPresence(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	contacts := befriend(alice, bob)
	if m, err := alice.svc.Send(ctx, "bob", "hello"); err != nil || m.State != Delivered {
		t.Fatalf("send: %+v, %v", m, err)
	}
	contacts.Set("bob", "")
	if m, err := alice.svc.Send(ctx, "bob", "gone?"); err != nil || m.State != Queued {
		t.Fatalf("send while offline: %+v, %v; want queued", m, err)
	}
	if got, _ := bob.hist.With(ctx, "alice", 10, ""); len(got) != 1 {
		t.Fatalf("bob got %d messages, want 1", len(got))
	}
	contacts.Set("bob", bob.node.ID())
	if settled, err := alice.svc.Flush(ctx, "bob"); err != nil || len(settled) != 1 || settled[0].State != Delivered {
		t.Fatalf("flush: %+v, %v", settled, err)
	}
}

// TestRelayedStreamMovesToDirect: a conversation that began over a
// relayed connection moves to a direct one once it is up (as after a hole
// punch): the next message's stream opens on it, and both sides label it
// direct.
func TestRelayedStreamMovesToDirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	iss := relaytest.NewIssuer(t)
	sn := iss.StartSupernode(t, relay.Config{})
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	source := func(context.Context, map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
		return []peer.AddrInfo{sn.Info()}, nil
	}
	r := relay.StartReserver(bob.node, source, iss.Passport(t, bob.node), relay.ReserverConfig{Interval: time.Second})
	t.Cleanup(func() { r.Close() })
	tstest.WaitFor(t, time.Minute, func() error {
		if len(r.CircuitAddrs()) == 0 {
			return errors.New("bob has no reservation on the supernode")
		}
		return nil
	})
	if _, err := iss.Passport(t, alice.node).Present(ctx, sn.Info()); err != nil {
		t.Fatal(err)
	}
	b := contactstest.New(map[string]peer.ID{"alice": alice.node.ID(), "bob": bob.node.ID()})
	for _, u := range []*user{alice, bob} {
		u.svc = NewService(u.node, u.hist, b, func() string { return u.name }, nil)
		t.Cleanup(func() { u.svc.Close() })
	}
	if err := alice.node.Connect(ctx, peer.AddrInfo{ID: bob.node.ID(), Addrs: r.CircuitAddrs()}); err != nil {
		t.Fatal(err)
	}
	relayed := "relayed via " + sn.Node.ID().String()
	first, err := alice.svc.Send(ctx, "bob", "first")
	if err != nil || first.State != Delivered || first.Path != relayed {
		t.Fatalf("first: got %+v, %v; want delivered %s", first, err, relayed)
	}
	direct := network.WithForceDirectDial(ctx, "test: a hole punch")
	if err := alice.node.Connect(direct, peer.AddrInfo{ID: bob.node.ID(), Addrs: bob.node.Addrs()}); err != nil {
		t.Fatal(err)
	}
	second, err := alice.svc.Send(ctx, "bob", "second")
	if err != nil || second.State != Delivered || second.Path != "direct" {
		t.Fatalf("second, with a direct connection up: got %+v, %v; want delivered direct", second, err)
	}
	theirs, _ := bob.hist.With(ctx, "alice", 10, "")
	if len(theirs) != 2 || theirs[0].Path != relayed || theirs[1].Path != "direct" {
		t.Fatalf("bob's history: %+v", theirs)
	}
}

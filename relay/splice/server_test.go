package splice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/relay/splice/pb"
)

// bench is a splice server on its own host with peers A and B connected
// to it; B records the offers it gets and accepts them.
type bench struct {
	srv    *Server
	s      *node.Node
	a, b   *node.Node
	offers chan *pb.Offer

	spliced atomic.Uint64 // bytes

	mu       sync.Mutex
	admitted map[peer.ID]bool
	refusals map[string]int
}

func (b *bench) Refused(reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refusals[reason]++
}
func (b *bench) SpliceOpened()              {}
func (b *bench) SpliceClosed(time.Duration) {}
func (b *bench) BytesSpliced(n int)         { b.spliced.Add(uint64(n)) }
func (b *bench) refused(reason string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refusals[reason]
}
func (b *bench) admit(p peer.ID, ok bool)  { b.mu.Lock(); defer b.mu.Unlock(); b.admitted[p] = ok }
func (b *bench) isAdmitted(p peer.ID) bool { b.mu.Lock(); defer b.mu.Unlock(); return b.admitted[p] }

func newBench(t testing.TB, ctx context.Context, ttl time.Duration, opts ...func(*Config)) *bench {
	t.Helper()
	bn := &bench{
		s: nodetest.New(t), a: nodetest.New(t), b: nodetest.New(t),
		offers: make(chan *pb.Offer, 8), admitted: map[peer.ID]bool{}, refusals: map[string]int{},
	}
	cfg := Config{Listen: "127.0.0.1:0", Admitted: bn.isAdmitted, TokenTTL: ttl, HelloTimeout: time.Second, Tracer: bn}
	for _, o := range opts {
		o(&cfg)
	}
	var err error
	bn.srv, err = Start(bn.s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bn.srv.Close() })
	bn.b.SetStreamHandler(OfferProtocol, func(st network.Stream) {
		defer st.Close()
		o := new(pb.Offer)
		if err := wire.NewReader(st, maxFrame).Read(o); err != nil {
			st.Reset()
			return
		}
		bn.offers <- o
		_ = wire.Write(st, &pb.OfferAck{Accepted: true}, maxFrame)
	})
	for _, n := range []*node.Node{bn.a, bn.b} {
		if err := n.Connect(ctx, peer.AddrInfo{ID: bn.s.ID(), Addrs: bn.s.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	bn.admit(bn.a.ID(), true)
	bn.admit(bn.b.ID(), true)
	return bn
}

// grant asks for a splice from A to B and returns both tokens and the
// address.
func (bn *bench) grant(t testing.TB, ctx context.Context) (ta, tb Token, addr ma.Multiaddr) {
	t.Helper()
	resp, err := request(ctx, bn.a, bn.b.ID(), bn.s.ID())
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	ta, addr, err = parseResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	o := <-bn.offers
	if p, _ := peer.IDFromBytes(o.GetPeer()); p != bn.a.ID() {
		t.Fatalf("the offer names %s, want A %s", p, bn.a.ID())
	}
	tb, _ = tokenFrom(o.GetToken())
	return ta, tb, addr
}

// present dials the splice listener from local (nil: any), writes tok's
// hello and returns the connection.
func (bn *bench) present(t testing.TB, local net.Addr, tok Token) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: local}
	c, err := d.Dial("tcp", bn.srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(encodeHello(tok)); err != nil {
		t.Fatal(err)
	}
	return c
}

// wantClosed checks that c is closed by the supernode with no byte
// sent: no OK, nothing forwarded.
func wantClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 16))
	if n != 0 || err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("read %d bytes, err %v: want the connection closed with nothing sent", n, err)
	}
}

// wantPaired checks that c got the OK byte.
func wantPaired(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || b[0] != okByte {
		t.Fatalf("read %v, err %v: want the OK byte", b, err)
	}
	_ = c.SetReadDeadline(time.Time{})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestSpliceAdmission(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	t.Run("not admitted (no certificate)", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second)
		bn.admit(bn.a.ID(), false)
		_, err := request(ctx, bn.a, bn.b.ID(), bn.s.ID())
		var re *RequestError
		if !errors.As(err, &re) || re.Status != pb.Response_STATUS_NOT_ADMITTED {
			t.Fatalf("request without admission: %v, want NOT_ADMITTED", err)
		}
		bn.admit(bn.a.ID(), true)
		bn.admit(bn.b.ID(), false)
		if _, err := request(ctx, bn.a, bn.b.ID(), bn.s.ID()); !errors.As(err, &re) || re.Status != pb.Response_STATUS_NOT_ADMITTED {
			t.Fatalf("request for a peer without admission: %v, want NOT_ADMITTED", err)
		}
		if got := bn.refused(ReasonNotAdmitted); got != 2 {
			t.Errorf("refusals %q: got %d, want 2", ReasonNotAdmitted, got)
		}
	})

	t.Run("not connected", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second)
		other := nodetest.PeerID(t)
		bn.admit(other, true)
		_, err := request(ctx, bn.a, other, bn.s.ID())
		var re *RequestError
		if !errors.As(err, &re) || re.Status != pb.Response_STATUS_NOT_CONNECTED {
			t.Fatalf("request for an unconnected peer: %v, want NOT_CONNECTED", err)
		}
	})

	t.Run("good pair splices", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second)
		ta, tb, _ := bn.grant(t, ctx)
		ca, cb := bn.present(t, nil, ta), bn.present(t, nil, tb)
		wantPaired(t, ca)
		wantPaired(t, cb)
		if _, err := ca.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(cb, got); err != nil || string(got) != "hello" {
			t.Fatalf("B read %q, %v; want hello", got, err)
		}

		t.Run("replayed token", func(t *testing.T) {
			wantClosed(t, bn.present(t, nil, ta))
			wantClosed(t, bn.present(t, nil, tb))
		})
	})

	t.Run("unknown token", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second)
		var tok Token
		wantClosed(t, bn.present(t, nil, tok))
		if n := bn.spliced.Load(); n != 0 {
			t.Errorf("%d bytes spliced, want 0", n)
		}
	})

	t.Run("someone else's token", func(t *testing.T) {
		// A third party on another address holding A's token: A is not
		// connected from there, so the token does not work for it.
		bn := newBench(t, ctx, 10*time.Second)
		ta, tb, _ := bn.grant(t, ctx)
		bn.present(t, nil, tb)
		wantClosed(t, bn.present(t, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, ta))
		// The token is spent: A itself cannot use it now, and B, left
		// alone, is closed with nothing forwarded when the tokens expire.
		wantClosed(t, bn.present(t, nil, ta))
		if got := bn.refused(ReasonBadToken); got != 2 {
			t.Errorf("refusals %q: got %d, want 2", ReasonBadToken, got)
		}
	})

	t.Run("A's token twice (B's side taken by A)", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second)
		ta, _, _ := bn.grant(t, ctx)
		bn.present(t, nil, ta)
		wantClosed(t, bn.present(t, nil, ta))
	})

	t.Run("expired token", func(t *testing.T) {
		bn := newBench(t, ctx, 300*time.Millisecond)
		ta, tb, _ := bn.grant(t, ctx)
		cb := bn.present(t, nil, tb) // B came in time; A does not
		wantClosed(t, cb)            // closed at expiry, nothing sent
		wantClosed(t, bn.present(t, nil, ta))
		if n := bn.spliced.Load(); n != 0 {
			t.Errorf("%d bytes spliced, want 0", n)
		}
	})

	t.Run("no hello", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second)
		c, err := net.Dial("tcp", bn.srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET / HTTP/1.0\r\n\r\n")
		wantClosed(t, c)
	})

	t.Run("per-peer cap", func(t *testing.T) {
		bn := newBench(t, ctx, 10*time.Second, func(c *Config) { c.PerPeer = 2 })
		bn.grant(t, ctx)
		bn.grant(t, ctx)
		_, err := request(ctx, bn.a, bn.b.ID(), bn.s.ID())
		var re *RequestError
		if !errors.As(err, &re) || re.Status != pb.Response_STATUS_LIMITED {
			t.Fatalf("third request: %v, want LIMITED", err)
		}
	})
}

// TestSpliceAddressOnEveryInterface: a supernode whose host and splice
// listener listen on every interface (the default) names to each peer
// the address that peer reaches it at, also over QUIC, whose connections
// carry their socket's unspecified local address: an offer naming
// 0.0.0.0 is declined by the peer, and no splice ever forms.
func TestSpliceAddressOnEveryInterface(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := node.New(node.WithKey(nodetest.Key(t)), node.WithListenAddrs("/ip4/0.0.0.0/udp/0/quic-v1"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv, err := Start(s, Config{Listen: "0.0.0.0:0", Admitted: func(peer.ID) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, b := nodetest.New(t), nodetest.New(t)
	offers := make(chan *pb.Offer, 1)
	b.SetStreamHandler(OfferProtocol, func(st network.Stream) {
		defer st.Close()
		o := new(pb.Offer)
		if err := wire.NewReader(st, maxFrame).Read(o); err != nil {
			st.Reset()
			return
		}
		offers <- o
		_ = wire.Write(st, &pb.OfferAck{Accepted: true}, maxFrame)
	})
	var loopback []ma.Multiaddr
	for _, addr := range s.Addrs() {
		if ip, err := addr.ValueForProtocol(ma.P_IP4); err == nil && ip == "127.0.0.1" {
			loopback = append(loopback, addr)
		}
	}
	for _, n := range []*node.Node{a, b} {
		if err := n.Connect(ctx, peer.AddrInfo{ID: s.ID(), Addrs: loopback}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := request(ctx, a, b.ID(), s.ID())
	if err != nil {
		t.Fatal(err)
	}
	_, addr, err := parseResponse(resp)
	if err != nil {
		t.Fatalf("%v (response %v)", err, resp)
	}
	want := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", srv.Addr().Port)
	if addr.String() != want {
		t.Errorf("A was told %s, want %s", addr, want)
	}
	_, _, offered, err := parseOffer(<-offers)
	if err != nil || offered.String() != want {
		t.Errorf("B was offered %v (%v), want %s", offered, err, want)
	}
}

// TestSplicePublicBehindOneToOneNAT: a supernode whose interface has a
// private address behind a one-to-one NAT (a cloud machine announcing its
// public address) names its announced public address to peers that reach
// it from the internet, and its own to peers on its network.
func TestSplicePublicBehindOneToOneNAT(t *testing.T) {
	announced := []ma.Multiaddr{
		ma.StringCast("/ip4/10.0.0.5/tcp/4002"),
		ma.StringCast("/ip6/2001:db8::5/tcp/4002"),
		ma.StringCast("/ip4/8.8.4.4/udp/4002/quic-v1"),
	}
	private, lanPeer, internetPeer := net.ParseIP("10.0.0.5"), net.ParseIP("10.0.0.9"), net.ParseIP("1.1.1.1")
	if got := publicFor(private, internetPeer, announced); !got.Equal(net.ParseIP("8.8.4.4")) {
		t.Errorf("a peer on the internet is told %v, want the announced 8.8.4.4", got)
	}
	if got := publicFor(private, lanPeer, announced); got != nil {
		t.Errorf("a peer on the supernode's network is told %v, want the supernode's own address", got)
	}
	if got := publicFor(net.ParseIP("8.8.8.8"), internetPeer, announced); got != nil {
		t.Errorf("a supernode with a public address of its own is told to use %v", got)
	}
	if got := publicFor(private, internetPeer, announced[:2]); got != nil {
		t.Errorf("without a public IPv4 address announced the supernode says %v, want nothing", got)
	}
	if got := publicFor(private, internetPeer, nil); got != nil {
		t.Errorf("a supernode that announces nothing (a router's port mapping, say, which may not forward the splice port) says %v", got)
	}
}

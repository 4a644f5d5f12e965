package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Spliced connections: the relay fast path (package relay/splice). A
// supernode pairs two plain TCP connections, one from each peer, and
// copies bytes between them; the peers run the host's own upgrade (TLS
// 1.3 or Noise, then yamux) end to end over the pair, so the supernode
// forwards ciphertext it can neither read nor alter. The resulting
// connection joins the swarm through spliceTransport, a listen-only
// transport: the swarm adds what its listener yields like any accepted
// connection, and since the transport is no proxy the swarm prefers it to
// a circuit for new streams.

// P_PARLEY_SPLICE is the multiaddr protocol that ends the remote address
// of a spliced connection: /ip4/<supernode>/tcp/<splice port>/p2p/<supernode>/parley-splice.
// Its code is in the multicodec private-use range; it never leaves the
// process (spliced addresses are not advertised and cannot be dialled).
const P_PARLEY_SPLICE = 0x3f5e01

// spliceListenAddr is the spliceTransport's only listen address.
var spliceListenAddr ma.Multiaddr

func init() {
	if err := ma.AddProtocol(ma.Protocol{
		Name:  "parley-splice",
		Code:  P_PARLEY_SPLICE,
		VCode: ma.CodeToVarint(P_PARLEY_SPLICE),
	}); err != nil {
		panic(fmt.Sprintf("register the parley-splice multiaddr protocol: %v", err))
	}
	spliceListenAddr = ma.StringCast("/parley-splice")
}

// SpliceRelayOf returns the supernode of a spliced connection's remote
// address (…/p2p/<supernode>/parley-splice).
func SpliceRelayOf(a ma.Multiaddr) (peer.ID, bool) { return peerBefore(a, P_PARLEY_SPLICE) }

// IsSplice reports whether a is a spliced connection's or the splice
// listener's address.
func IsSplice(a ma.Multiaddr) bool {
	if a == nil {
		return false
	}
	_, err := a.ValueForProtocol(P_PARLEY_SPLICE)
	return err == nil
}

// SpliceAddr is the remote address of a connection spliced by supernode
// via, reached at tcpAddr (its splice listener).
func SpliceAddr(tcpAddr net.Addr, via peer.ID) (ma.Multiaddr, error) {
	a, err := manet.FromNetAddr(tcpAddr)
	if err != nil {
		return nil, fmt.Errorf("splice address: %w", err)
	}
	p, err := ma.NewComponent("p2p", via.String())
	if err != nil {
		return nil, fmt.Errorf("splice address: %w", err)
	}
	return a.AppendComponent(p).Encapsulate(spliceListenAddr), nil
}

// ErrNoSpliceTransport is returned by UpgradeSpliced when the host runs
// without the splice transport (it is closed).
var ErrNoSpliceTransport = errors.New("splice transport not running")

// UpgradeSpliced runs the host's upgrade over raw, a TCP connection that
// supernode via paired with one from remote, and adds the result to the
// swarm. dir says which side this is: DirOutbound for the peer that asked
// for the splice (the secure channel's client), DirInbound for the other.
// Either way the secure channel must authenticate remote, or the
// connection is closed. raw is closed on error. The connection is in the
// swarm when UpgradeSpliced returns nil.
func (n *Node) UpgradeSpliced(ctx context.Context, raw net.Conn, dir network.Direction, remote, via peer.ID) error {
	t := n.splice.Load()
	if t == nil {
		raw.Close()
		return ErrNoSpliceTransport
	}
	return t.upgrade(ctx, n.Network(), raw, dir, remote, via)
}

// PunchPending reports whether hole punching may still turn the node's
// relayed connection to p into a direct one: the node punches, has an
// address to punch from, p speaks DCUtR (or has not said yet), and an
// attempt is running or the watchdog has rounds left. A spliced
// connection ends hole punching (DCUtR and the watchdog stop once any
// connection to the peer is not a circuit), so the fast path waits for
// this to turn false.
func (n *Node) PunchPending(p peer.ID) bool {
	pu := n.puncher
	if pu == nil || pu.svc == nil {
		return false
	}
	// Identified (its protocols known) and without DCUtR: no punch.
	if protos, err := n.Peerstore().GetProtocols(p); err == nil && len(protos) > 0 && !slices.Contains(protos, holepunch.Protocol) {
		return false
	}
	if len(pu.holePunchAddrs()) == 0 { // the costly check last
		return false
	}
	pu.mu.Lock()
	defer pu.mu.Unlock()
	st := pu.attempts[p]
	if _, punched := pu.punched[p]; punched {
		return false
	}
	return st == nil || st.running || st.rounds < punchRounds
}

// spliceTransport is the transport of spliced connections. It dials
// nothing: its listener yields the connections UpgradeSpliced made.
type spliceTransport struct {
	owner    *Node
	upgrader transport.Upgrader
	rcmgr    network.ResourceManager

	mu   sync.Mutex // guards list
	list *spliceListener
}

var _ transport.Transport = (*spliceTransport)(nil)

// newSpliceTransport is the constructor libp2p calls, for the node's host
// and for any helper host built from the same options (AutoNAT v2's
// dialer): the one that listens is the node's.
func newSpliceTransport(owner *Node, u transport.Upgrader, rcmgr network.ResourceManager) *spliceTransport {
	return &spliceTransport{owner: owner, upgrader: u, rcmgr: rcmgr}
}

func (t *spliceTransport) upgrade(ctx context.Context, nw network.Network, raw net.Conn, dir network.Direction, remote, via peer.ID) error {
	t.mu.Lock()
	l := t.list
	t.mu.Unlock()
	if l == nil {
		raw.Close()
		return ErrNoSpliceTransport
	}
	raddr, err := SpliceAddr(raw.RemoteAddr(), via)
	if err != nil {
		raw.Close()
		return err
	}
	laddr, err := manet.FromNetAddr(raw.LocalAddr())
	if err != nil {
		raw.Close()
		return fmt.Errorf("splice local address: %w", err)
	}
	laddr = laddr.Encapsulate(spliceListenAddr)
	scope, err := t.rcmgr.OpenConnection(dir, true, raddr)
	if err != nil {
		raw.Close()
		return fmt.Errorf("resource manager refused a spliced connection: %w", err)
	}
	if err := scope.SetPeer(remote); err != nil {
		scope.Done()
		raw.Close()
		return fmt.Errorf("resource manager refused a spliced connection to %s: %w", remote, err)
	}
	mc := &maConn{Conn: raw, laddr: laddr, raddr: raddr}
	c, err := t.upgrader.Upgrade(ctx, t, mc, dir, remote, scope)
	if err != nil {
		return fmt.Errorf("upgrade spliced connection to %s: %w", remote, err)
	}
	if c.RemotePeer() != remote {
		c.Close()
		return fmt.Errorf("spliced connection authenticated %s, want %s", c.RemotePeer(), remote)
	}
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
		return ErrNoSpliceTransport
	case <-ctx.Done():
		c.Close()
		return fmt.Errorf("hand the spliced connection to the swarm: %w", ctx.Err())
	}
	// The swarm adds accepted connections in a goroutine of its own: wait
	// until this one is there, so that the caller can rely on it.
	for {
		for _, sc := range nw.ConnsToPeer(remote) {
			if sc.RemoteMultiaddr().Equal(raddr) && sc.LocalMultiaddr().Equal(laddr) {
				return nil
			}
		}
		if c.IsClosed() {
			return fmt.Errorf("spliced connection to %s closed before the swarm took it", remote)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the swarm to take the spliced connection: %w", ctx.Err())
		case <-l.done:
			return ErrNoSpliceTransport
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (t *spliceTransport) Dial(context.Context, ma.Multiaddr, peer.ID) (transport.CapableConn, error) {
	return nil, errors.New("spliced connections are made through a supernode's splice service, not dialled")
}

func (t *spliceTransport) CanDial(ma.Multiaddr) bool { return false }

func (t *spliceTransport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	if !laddr.Equal(spliceListenAddr) {
		return nil, fmt.Errorf("splice transport listens on %s only, not %s", spliceListenAddr, laddr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.list != nil {
		return nil, errors.New("splice transport already listening")
	}
	t.list = &spliceListener{t: t, conns: make(chan transport.CapableConn), done: make(chan struct{})}
	t.owner.splice.Store(t)
	return t.list, nil
}

func (t *spliceTransport) Protocols() []int { return []int{P_PARLEY_SPLICE} }

// Proxy is false: the bytes do cross a supernode, but the secure channel
// runs end to end, so the swarm may treat it as a direct connection (and
// prefer it to a circuit).
func (t *spliceTransport) Proxy() bool { return false }

func (t *spliceTransport) String() string { return "parley-splice" }

type spliceListener struct {
	t     *spliceTransport
	conns chan transport.CapableConn
	done  chan struct{}
	once  sync.Once
}

func (l *spliceListener) Accept() (transport.CapableConn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, transport.ErrListenerClosed
	}
}

func (l *spliceListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.t.mu.Lock()
		if l.t.list == l {
			l.t.list = nil
		}
		l.t.mu.Unlock()
	})
	return nil
}

func (l *spliceListener) Addr() net.Addr          { return spliceNetAddr{} }
func (l *spliceListener) Multiaddr() ma.Multiaddr { return spliceListenAddr }

type spliceNetAddr struct{}

func (spliceNetAddr) Network() string { return "parley-splice" }
func (spliceNetAddr) String() string  { return "parley-splice" }

// maConn is a net.Conn with the multiaddrs the swarm is to see.
type maConn struct {
	net.Conn
	laddr, raddr ma.Multiaddr
}

func (c *maConn) LocalMultiaddr() ma.Multiaddr  { return c.laddr }
func (c *maConn) RemoteMultiaddr() ma.Multiaddr { return c.raddr }

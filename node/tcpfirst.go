package node

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// TCP first, for the peers bulk data goes to.
//
// go-libp2p dials QUIC before TCP (TCP follows 30–250 ms later, and only
// if QUIC has not connected by then), so two devices with direct
// addresses end up on QUIC. On every machine measured QUIC moves a stream
// at about half TCP's speed for twice the CPU (see bulk.go), and the swarm
// never opens a second connection to a connected peer, so the transport of
// the first connection is the one transfers get. For the peers a
// WithPreferTCP function names (a client's contacts' devices), the node
// therefore dials their direct TCP addresses alone first, when it is about
// to open a stream and holds no connection to the peer; if that fails
// within tcpFirstTimeout it dials as usual (QUIC, relays), and skips the
// TCP attempt for that peer for tcpFailedFor. Hole punching is untouched:
// it starts from a relayed connection, and DCUtR dials all transports at
// once. Connections to other peers (rendezvous, supernodes, the DHT) keep
// go-libp2p's order, so the node's observed QUIC address, which hole
// punching needs, keeps being confirmed.

const (
	// tcpFirstTimeout bounds the TCP-only dial: a TCP and a TLS handshake,
	// a few round trips.
	tcpFirstTimeout = 2 * time.Second
	// tcpFirstCircuitTimeout bounds it for a peer that also advertises
	// relay circuits, dialled on its addresses on this node's own
	// networks: they answer at once, or not at all.
	tcpFirstCircuitTimeout = 500 * time.Millisecond
	// tcpFailedFor is how long a peer whose TCP-only dial failed is dialled
	// as usual straight away.
	tcpFailedFor = 10 * time.Minute
)

// tcpFirst is the state of TCP-first dialling.
type tcpFirst struct {
	prefer func(peer.ID) bool // nil: never

	mu       sync.Mutex            // guards the following
	dialling map[peer.ID]int       // TCP-only dials in progress
	failed   map[peer.ID]time.Time // when the last TCP-only dial failed
}

// WithPreferTCP makes the node dial the peers for which prefer reports
// true on their direct TCP addresses first (see tcpfirst.go). prefer may
// be called from any goroutine, often.
func WithPreferTCP(prefer func(peer.ID) bool) Option {
	return func(c *config) error {
		if c.preferTCP != nil {
			return errors.New("cannot specify WithPreferTCP twice")
		}
		c.preferTCP = prefer
		return nil
	}
}

// tcpOnly reports whether dials to p may use TCP addresses only now.
func (t *tcpFirst) tcpOnly(p peer.ID) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dialling[p] > 0
}

// allowAddr is the gater's check of a dial to p at a: during a TCP-only
// dial, direct TCP addresses only.
func (t *tcpFirst) allowAddr(p peer.ID, a ma.Multiaddr) bool {
	if !t.tcpOnly(p) {
		return true
	}
	return isDirectTCP(a)
}

// isDirectTCP reports whether a is a plain TCP address (no circuit, no
// websocket).
func isDirectTCP(a ma.Multiaddr) bool {
	return !IsCircuit(a) && TransportOf(a) == TransportTCP
}

// NewStream opens a stream as Host.NewStream does, dialling a peer that
// WithPreferTCP names on TCP first when there is no connection to it.
func (n *Node) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	n.dialTCPFirst(ctx, p)
	return n.Host.NewStream(ctx, p, pids...)
}

// dialTCPFirst dials p on its direct TCP addresses alone, when p is
// preferred, not connected, has such addresses and did not fail lately.
// A peer that also advertises relay circuits thinks itself behind a NAT:
// its direct addresses are most likely unreachable from here, and a TCP
// attempt would only delay the first message (by the timeout, measured
// in the NAT lab), so it is tried on TCP first only when one of its TCP
// addresses is on a network of this node's own (the same LAN, the same
// machine), and briefly. A failure is remembered, not returned: the
// caller dials as usual.
func (n *Node) dialTCPFirst(ctx context.Context, p peer.ID) {
	t := n.tcpFirst
	if t == nil || t.prefer == nil {
		return
	}
	if noDial, _ := network.GetNoDial(ctx); noDial {
		return
	}
	if len(n.Network().ConnsToPeer(p)) > 0 || n.gater.isRelayOnly(p) || n.gater.isDown(p) || !t.prefer(p) {
		return
	}
	var tcp []ma.Multiaddr
	natted := false
	for _, a := range n.Peerstore().Addrs(p) {
		natted = natted || IsCircuit(a)
		if isDirectTCP(a) {
			tcp = append(tcp, a)
		}
	}
	timeout := tcpFirstTimeout
	if natted {
		timeout = tcpFirstCircuitTimeout
		if !slices.ContainsFunc(tcp, n.onOwnNetwork) {
			return
		}
	}
	if len(tcp) == 0 {
		return
	}
	t.mu.Lock()
	if at, ok := t.failed[p]; ok && time.Since(at) < tcpFailedFor {
		t.mu.Unlock()
		return
	}
	t.dialling[p]++
	t.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, timeout)
	c, err := n.Network().DialPeer(network.WithDialPeerTimeout(dctx, timeout), p)
	cancel()

	t.mu.Lock()
	if t.dialling[p]--; t.dialling[p] == 0 {
		delete(t.dialling, p)
	}
	if err != nil && ctx.Err() == nil {
		t.failed[p] = time.Now()
	} else if err == nil {
		delete(t.failed, p)
	}
	t.mu.Unlock()
	if err != nil {
		log.Infow("TCP-first dial failed; dialling as usual", "peer", p, "err", err)
		return
	}
	log.Debugw("connected on TCP first", "peer", p, "addr", c.RemoteMultiaddr())
}

// onOwnNetwork reports whether a is a loopback address while the node
// listens on loopback, or a private address in the same /24 (IPv4) or /64
// (IPv6) as one of the node's own.
func (n *Node) onOwnNetwork(a ma.Multiaddr) bool {
	ip, err := manet.ToIP(a)
	if err != nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		return false
	}
	own, err := n.Network().InterfaceListenAddresses()
	if err != nil {
		return false
	}
	for _, o := range own {
		oip, err := manet.ToIP(o)
		if err != nil {
			continue
		}
		switch {
		case ip.IsLoopback():
			if oip.IsLoopback() {
				return true
			}
		case ip.To4() != nil && oip.To4() != nil:
			if ip.Mask(net.CIDRMask(24, 32)).Equal(oip.Mask(net.CIDRMask(24, 32))) {
				return true
			}
		case ip.To4() == nil && oip.To4() == nil:
			if ip.Mask(net.CIDRMask(64, 128)).Equal(oip.Mask(net.CIDRMask(64, 128))) {
				return true
			}
		}
	}
	return false
}

func newTCPFirst(prefer func(peer.ID) bool) *tcpFirst {
	return &tcpFirst{prefer: prefer, dialling: make(map[peer.ID]int), failed: make(map[peer.ID]time.Time)}
}

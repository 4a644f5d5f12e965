package node

import (
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// PathKind is how a connection to a peer was made.
type PathKind int

const (
	NotConnected PathKind = iota
	Direct                // dialled directly
	HolePunched           // direct, made by DCUtR from a relayed connection
	Relayed               // through a supernode's circuit relay
)

// Transports a connection runs on, as Path.Transport names them.
const (
	TransportTCP  = "tcp"
	TransportQUIC = "quic"
)

// Path describes the best open connection to a peer.
type Path struct {
	Kind PathKind
	Via  peer.ID // the relay, for Relayed
	// Transport is what the connection runs on (TransportTCP,
	// TransportQUIC, or another multiaddr protocol name); for a relayed
	// connection, that of the hop to the supernode. Empty when not
	// connected or unknown.
	Transport string
	// spliced: a relayed connection the supernode splices (the relay fast
	// path) rather than a circuit.
	spliced bool
}

// String is the path without its transport: "direct", "holepunched",
// "relayed via <supernode>" or "not connected" (apitype.PathLabel adds
// the transport for users).
func (p Path) String() string {
	switch p.Kind {
	case Direct:
		return "direct"
	case HolePunched:
		return "holepunched"
	case Relayed:
		return fmt.Sprintf("relayed via %s", p.Via)
	default:
		return "not connected"
	}
}

// TransportOf names the transport of a connection's remote address: "tcp",
// "quic", or the name of another transport protocol; for a relayed
// connection (…/p2p/<relay>/p2p-circuit…), that of the hop to the relay,
// the part of the address before the circuit. Empty if there is none.
func TransportOf(a ma.Multiaddr) string {
	name := ""
	for _, c := range a {
		switch code := c.Protocol().Code; code {
		case ma.P_CIRCUIT:
			return name
		case ma.P_TCP:
			name = TransportTCP
		case ma.P_QUIC_V1, ma.P_QUIC:
			name = TransportQUIC
		case ma.P_WS, ma.P_WSS, ma.P_WEBTRANSPORT, ma.P_WEBRTC_DIRECT, ma.P_WEBRTC:
			name = c.Protocol().Name
		}
	}
	return name
}

// PathTo reports how the node is connected to p. A direct connection wins
// over a relayed one, since new streams prefer it; among direct ones, the
// one the swarm opens new streams on (the most streams, then the last).
func (n *Node) PathTo(p peer.ID) Path {
	best := Path{Kind: NotConnected}
	var bestDirect network.Conn
	for _, c := range n.Network().ConnsToPeer(p) {
		if _, ok := RelayOf(c.RemoteMultiaddr()); ok {
			if best.Kind == NotConnected {
				best = n.ConnPath(c)
			}
			continue
		}
		if _, ok := SpliceRelayOf(c.RemoteMultiaddr()); ok { // above a circuit, below direct
			best = n.ConnPath(c)
			continue
		}
		if bestDirect == nil || len(c.GetStreams()) >= len(bestDirect.GetStreams()) {
			bestDirect = c
		}
	}
	if bestDirect != nil {
		return n.ConnPath(bestDirect)
	}
	return best
}

// ConnPath describes one connection of the node: relayed via its
// supernode, hole-punched, or direct, and the transport it runs on.
func (n *Node) ConnPath(c network.Conn) Path {
	a := c.RemoteMultiaddr()
	if relay, ok := RelayOf(a); ok {
		return Path{Kind: Relayed, Via: relay, Transport: TransportOf(a)}
	}
	if via, ok := SpliceRelayOf(a); ok {
		return Path{Kind: Relayed, Via: via, Transport: TransportOf(a), spliced: true}
	}
	if n.holePunched(c) {
		return Path{Kind: HolePunched, Transport: TransportOf(a)}
	}
	return Path{Kind: Direct, Transport: TransportOf(a)}
}

// RelayOf returns the relay peer of a circuit address
// (.../p2p/<relay>/p2p-circuit/...).
func RelayOf(a ma.Multiaddr) (peer.ID, bool) { return peerBefore(a, ma.P_CIRCUIT) }

// peerBefore returns the peer named last before the first component of
// protocol code in a (.../p2p/<peer>/<code>...).
func peerBefore(a ma.Multiaddr, code int) (peer.ID, bool) {
	var last peer.ID
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
				last = id
			}
		case code:
			return last, last != ""
		}
	}
	return "", false
}

// Shareable drops loopback addresses from addrs unless nothing else is
// left: a loopback address means something else on every other machine,
// but it is all a node listening on 127.0.0.1 only (the loopback testnet)
// has.
func Shareable(addrs []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return slices.Clone(addrs)
	}
	return out
}

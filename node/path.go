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

// Path describes the best open connection to a peer.
type Path struct {
	Kind PathKind
	Via  peer.ID // the relay, for Relayed
}

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

// PathTo reports how the node is connected to p. A direct connection wins
// over a relayed one, since new streams prefer it.
func (n *Node) PathTo(p peer.ID) Path {
	best := Path{Kind: NotConnected}
	for _, c := range n.Network().ConnsToPeer(p) {
		if relay, ok := RelayOf(c.RemoteMultiaddr()); ok {
			if best.Kind == NotConnected {
				best = Path{Kind: Relayed, Via: relay}
			}
			continue
		}
		if via, ok := SpliceRelayOf(c.RemoteMultiaddr()); ok { // above a circuit, below direct
			best = Path{Kind: Relayed, Via: via}
			continue
		}
		if n.holePunched(c) {
			return Path{Kind: HolePunched}
		}
		return Path{Kind: Direct}
	}
	return best
}

// ConnPath describes one connection of the node: relayed via its
// supernode, hole-punched, or direct.
func (n *Node) ConnPath(c network.Conn) Path {
	if relay, ok := RelayOf(c.RemoteMultiaddr()); ok {
		return Path{Kind: Relayed, Via: relay}
	}
	if via, ok := SpliceRelayOf(c.RemoteMultiaddr()); ok {
		return Path{Kind: Relayed, Via: via}
	}
	if n.holePunched(c) {
		return Path{Kind: HolePunched}
	}
	return Path{Kind: Direct}
}

// RelayOf returns the relay peer of a circuit address
// (.../p2p/<relay>/p2p-circuit/...).
func RelayOf(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	var last peer.ID
	found := false
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			id, err := peer.IDFromBytes(c.RawValue())
			if err == nil {
				last = id
			}
		case ma.P_CIRCUIT:
			relay, found = last, last != ""
		}
		if found {
			break
		}
	}
	return relay, found
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

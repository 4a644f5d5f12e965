package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gater is the node's connection gater. It skips dials to peers known to
// be down, and dials through them as relays: a dial through a dead relay
// holds up every other relayed dial to the same peer until it times out
// (go-libp2p's circuit client dials one relay per destination at a time).
// Under NAT imitation it also refuses inbound connections that do not come
// through a relay, as a NAT drops unsolicited packets. For a while after
// a direct path to a peer stopped answering (AvoidDirect) it dials that
// peer through relays only.
type gater struct {
	natImitation bool
	tcpFirst     *tcpFirst // set once before the host starts: its TCP-only dials

	mu        sync.Mutex // guards down and relayOnly
	down      map[peer.ID]time.Time
	relayOnly map[peer.ID]time.Time
}

var _ connmgr.ConnectionGater = (*gater)(nil)

func newGater(natImitation bool) *gater {
	return &gater{natImitation: natImitation, down: make(map[peer.ID]time.Time), relayOnly: make(map[peer.ID]time.Time)}
}

// avoidDirect dials p through relays only until the given time.
func (g *gater) avoidDirect(p peer.ID, until time.Time) { g.set(g.relayOnly, p, until) }

func (g *gater) isRelayOnly(p peer.ID) bool { return g.active(g.relayOnly, p) }

// markDown skips p, and relaying through p, until the given time.
func (g *gater) markDown(p peer.ID, until time.Time) { g.set(g.down, p, until) }

func (g *gater) isDown(p peer.ID) bool { return g.active(g.down, p) }

// set records in rule (down or relayOnly) that it holds for p until the
// given time.
func (g *gater) set(rule map[peer.ID]time.Time, p peer.ID, until time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rule[p] = until
}

// active reports whether rule still holds for p, forgetting it once over.
func (g *gater) active(rule map[peer.ID]time.Time, p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := rule[p]
	if ok && time.Now().After(until) {
		delete(rule, p)
		return false
	}
	return ok
}

func (g *gater) InterceptPeerDial(p peer.ID) bool { return !g.isDown(p) }

func (g *gater) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	relay, circuit := RelayOf(a)
	if circuit && g.isDown(relay) {
		return false
	}
	if g.isRelayOnly(p) && !IsCircuit(a) { // the lookup first: parsing a is dearer
		return false
	}
	return g.tcpFirst.allowAddr(p, a)
}

func (g *gater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func (g *gater) InterceptAccept(cm network.ConnMultiaddrs) bool {
	if !g.natImitation || IsCircuit(cm.RemoteMultiaddr()) || IsCircuit(cm.LocalMultiaddr()) {
		return true
	}
	log.Debugw("NAT imitation dropped inbound connection", "from", cm.RemoteMultiaddr())
	return false
}

// IsCircuit reports whether a is a relay circuit address (it contains
// /p2p-circuit), whether or not it names the relay.
func IsCircuit(a ma.Multiaddr) bool {
	if a == nil {
		return false
	}
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

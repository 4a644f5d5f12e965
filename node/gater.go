package node

import (
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// natGater imitates a NAT on loopback: outbound connections are free, and
// inbound ones are accepted only when they come through a relay.
type natGater struct{}

var _ connmgr.ConnectionGater = natGater{}

func (natGater) InterceptPeerDial(peer.ID) bool               { return true }
func (natGater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (natGater) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (natGater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func (natGater) InterceptAccept(cm network.ConnMultiaddrs) bool {
	if IsCircuit(cm.RemoteMultiaddr()) || IsCircuit(cm.LocalMultiaddr()) {
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

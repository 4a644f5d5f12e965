package node

import (
	"fmt"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/network"
	bhost "github.com/libp2p/go-libp2p/p2p/host/basic"
	ma "github.com/multiformats/go-multiaddr"
)

// WithPortMapping makes the node ask its router for port mappings of its
// listen ports (UPnP IGD or NAT-PMP, through go-libp2p's NAT manager), renew
// them while it runs and delete them when it closes. A mapped address is
// advertised like any other of the node's addresses, so a peer that cannot
// punch a hole (behind a symmetric NAT, say) can dial it directly.
func WithPortMapping() Option {
	return func(c *config) error {
		c.portMapping = true
		return nil
	}
}

// PortMapping is a listen address the router forwards an external address
// to.
type PortMapping struct {
	Listen   ma.Multiaddr // the node's own listen address
	External ma.Multiaddr // the router's public address and mapped port
}

// portMapper holds the host's NAT manager once libp2p has made it.
type portMapper struct {
	mgr atomic.Pointer[bhost.NATManager]
}

// constructor is the libp2p.NATManager constructor that records the
// manager it makes.
func (p *portMapper) constructor(net network.Network) bhost.NATManager {
	m := bhost.NewNATManager(net)
	p.mgr.Store(&m)
	return m
}

// close deletes the router's mappings and stops renewing them. The host
// closes its NAT manager too, but only after its network: in the NAT lab
// the mappings then stayed on the router until their leases ran out
// (closing listeners make the manager remove mappings with a context the
// host's Close cancels right after). Closing the manager first deletes
// them all, with a fresh timeout.
func (p *portMapper) close() error {
	mp := p.mgr.Load()
	if mp == nil {
		return nil
	}
	if err := (*mp).Close(); err != nil {
		return fmt.Errorf("close port mapping: %w", err)
	}
	return nil
}

// PortMappings lists the mappings the router granted and that are in force
// now: none without WithPortMapping, before a router was found, or when it
// refused.
func (n *Node) PortMappings() []PortMapping {
	mp := n.portMapper.mgr.Load()
	if mp == nil {
		return nil
	}
	var out []PortMapping
	for _, a := range n.Network().ListenAddresses() {
		if IsCircuit(a) {
			continue
		}
		if ext := (*mp).GetMapping(a); ext != nil {
			out = append(out, PortMapping{Listen: a, External: ext})
		}
	}
	return out
}

package node

import (
	"fmt"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// natTracker keeps the NAT type per transport that the host's observed
// address manager determined (event.EvtNATDeviceTypeChanged): whether the
// NAT maps a local port to one public port for every peer
// (endpoint-independent, "cone": hole punching can work) or a new one per
// peer (endpoint-dependent, "symmetric": it cannot). libp2p decides from
// the addresses at least nine peers observed, checked once a minute, so
// the type stays unknown for a while after start, and for good on a
// network with few peers.
type natTracker struct {
	sub  event.Subscription
	done chan struct{}

	tcp, udp atomic.Int32 // network.NATDeviceType
}

func startNATTracker(h host.Host) (*natTracker, error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtNATDeviceTypeChanged))
	if err != nil {
		return nil, fmt.Errorf("subscribe to NAT type: %w", err)
	}
	t := &natTracker{sub: sub, done: make(chan struct{})}
	go func() {
		defer close(t.done)
		for e := range sub.Out() {
			t.record(e.(event.EvtNATDeviceTypeChanged))
		}
	}()
	return t, nil
}

// record keeps what an event says. go-libp2p v0.51.0's observed address
// manager labels its two events the wrong way round: it reads
// "newUDPNAT, newTCPNAT := o.getNATType()" from a function that returns
// (tcp, udp), so the event it marks UDP carries TCP's type and the other
// way round (p2p/host/observedaddrs/manager.go, eventHandler).
// eventsSwapped undoes that; TestNATEventsSwapped notices a libp2p that
// fixed it.
func (t *natTracker) record(e event.EvtNATDeviceTypeChanged) {
	proto := e.TransportProtocol
	if eventsSwapped {
		if proto == network.NATTransportUDP {
			proto = network.NATTransportTCP
		} else {
			proto = network.NATTransportUDP
		}
	}
	switch proto {
	case network.NATTransportTCP:
		t.tcp.Store(int32(e.NatDeviceType))
	case network.NATTransportUDP:
		t.udp.Store(int32(e.NatDeviceType))
	}
	log.Infow("NAT type determined", "transport", proto, "type", e.NatDeviceType)
}

// eventsSwapped: see natTracker.record.
const eventsSwapped = true

func (t *natTracker) close() error {
	err := t.sub.Close()
	<-t.done
	return err
}

// NATType is the type of the NAT in front of the node, for TCP and for
// UDP (QUIC), as libp2p determined it from the addresses peers observe:
// network.NATDeviceTypeUnknown until it has enough observations. The
// types mean something only while the node is behind a NAT
// (Reachability private); a public node has no NAT to type.
func (n *Node) NATType() (tcp, udp network.NATDeviceType) {
	return network.NATDeviceType(n.nat.tcp.Load()), network.NATDeviceType(n.nat.udp.Load())
}

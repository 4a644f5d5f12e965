package app

import (
	"context"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
)

// Status returns the client's current state.
func (e *Engine) Status(context.Context) (apitype.Status, error) {
	seq := e.events.last() // before the snapshot: Watch(seq) then misses nothing
	username, loggedIn, problem := e.sess.state()
	s := apitype.Status{
		Peer:     e.node.ID().String(),
		Username: username,
		LoggedIn: loggedIn,
		Login:    problem.public(),
		EventSeq: seq,
	}
	reach := e.node.Reachability()
	s.Reachability = reach.String()
	s.Rendezvous = rendezvousAddr(e.cfg.Rendezvous)
	s.NAT = natStatus(e.node, reach)
	for _, a := range e.node.PublicAddrs() {
		s.PublicAddrs = append(s.PublicAddrs, a.String())
	}
	for _, m := range e.node.PortMappings() {
		s.PortMappings = append(s.PortMappings, apitype.PortMapping{External: m.External.String(), Listen: m.Listen.String()})
	}
	s.QUICBuffers = e.node.QUICBufferAdvice()
	s.Supernode = supernodeState(e.volunteer.State())
	s.Supernodes = idStrings(e.Supernodes())
	s.SupernodeRTTs = make(map[string]float64)
	for _, id := range e.Supernodes() {
		if rtt := e.node.Peerstore().LatencyEWMA(id); rtt > 0 {
			s.SupernodeRTTs[id.String()] = float64(rtt.Microseconds()) / 1000
		}
	}
	s.DHT = e.dhtStatus()
	for _, a := range e.advertisedAddrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	book := e.contacts.listing()
	s.Contacts, s.Incoming, s.Outgoing = book.Contacts, book.Incoming, book.Outgoing
	return s, nil
}

// natStatus is the NAT type libp2p determined, per transport. libp2p's
// types mean something only behind a NAT (its event's doc says so): a
// device that is not known to be private shows unknown.
func natStatus(n *node.Node, reach network.Reachability) apitype.NATStatus {
	tcp, udp := n.NATType()
	if reach != network.ReachabilityPrivate {
		tcp, udp = network.NATDeviceTypeUnknown, network.NATDeviceTypeUnknown
	}
	return apitype.NATStatus{TCP: natType(tcp), UDP: natType(udp)}
}

func natType(t network.NATDeviceType) apitype.NATType {
	switch t {
	case network.NATDeviceTypeEndpointIndependent:
		return apitype.NATEndpointIndependent
	case network.NATDeviceTypeEndpointDependent:
		return apitype.NATEndpointDependent
	}
	return apitype.NATUnknown
}

// rendezvousAddr is the server's address as --rendezvous takes it.
func rendezvousAddr(ai peer.AddrInfo) string {
	addrs, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	return addrs[0].String()
}

func supernodeState(v relay.VolunteerState) apitype.SupernodeState {
	return apitype.SupernodeState{Mode: v.Mode, Serving: v.Serving, Active: v.Active, Reason: v.Reason,
		Reservations: v.Reservations, Circuits: v.Circuits}
}

// messageOf is a chat message as the API shows it.
func messageOf(m chat.Message) apitype.Message {
	return apitype.Message{ID: m.ID, From: m.From, To: m.To, Sent: m.Sent, Body: m.Body, Incoming: m.Incoming,
		State: apitype.MessageState(m.State), Error: m.Error, Path: m.Path, Transport: m.Transport}
}

// withPath fills in how we are connected to the contact's device (see
// contacts.Status).
func withPath(n *node.Node, c apitype.ContactStatus) apitype.ContactStatus {
	c.Path, c.Transport = notConnected, ""
	if id, err := peer.Decode(c.Peer); err == nil {
		p := n.PathTo(id)
		c.Path, c.Transport = p.String(), p.Transport
	}
	return c
}

func idStrings(ids []peer.ID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

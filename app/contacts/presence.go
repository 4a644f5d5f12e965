package contacts

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous/client"
)

// DevicesOf is every device a presence lists (the most recent last).
func DevicesOf(p client.Presence) []peer.AddrInfo {
	if len(p.Devices) > 0 {
		return p.Devices
	}
	if p.Peer != "" {
		return []peer.AddrInfo{{ID: p.Peer, Addrs: p.Addrs}}
	}
	return nil
}

// LatestDevice is the device a message to the contact goes to: the one
// that logged in last, or "" when the contact is offline.
func LatestDevice(p client.Presence) peer.ID {
	if !p.Online {
		return ""
	}
	return LastDevice(p)
}

// LastDevice is the device that logged in last, even if the contact is
// offline now ("" if the server never named one).
func LastDevice(p client.Presence) peer.ID {
	if p.Peer != "" {
		return p.Peer
	}
	if ds := p.Devices; len(ds) > 0 {
		return ds[len(ds)-1].ID
	}
	return ""
}

// Status is a contact's presence as the API shows it, without the
// connection path (Path is empty: the caller knows the connections).
func Status(p client.Presence) apitype.ContactStatus {
	c := apitype.ContactStatus{Username: p.Username, Online: p.Online, LastSeen: p.LastSeen}
	if id := LatestDevice(p); id != "" {
		c.Peer = id.String()
	}
	for _, a := range p.Addrs {
		c.Addrs = append(c.Addrs, a.String())
	}
	if p.Online {
		for _, d := range DevicesOf(p) {
			c.Devices = append(c.Devices, d.ID.String())
		}
	}
	return c
}

func presenceEvent(p client.Presence) apitype.Event {
	c := Status(p)
	return apitype.Event{Kind: apitype.EventPresence, Contact: &c}
}

func contactEvent(name string, change client.ContactChange) apitype.Event {
	return apitype.Event{Kind: apitype.EventContact, Username: name, Change: change.String()}
}

// relaysNamed are the supernodes named in circuit addresses, each once.
func relaysNamed(addrs []ma.Multiaddr) []peer.ID {
	var out []peer.ID
	for _, a := range addrs {
		if r, ok := relayOf(a); ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// relayOf is the supernode a circuit address names
// (…/p2p/<relay>/p2p-circuit…); node.RelayOf is the same, in a package the
// book does not link.
func relayOf(a ma.Multiaddr) (peer.ID, bool) {
	var last peer.ID
	for _, c := range a {
		switch c.Protocol().Code {
		case ma.P_P2P:
			if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
				last = id
			}
		case ma.P_CIRCUIT:
			return last, last != ""
		}
	}
	return "", false
}

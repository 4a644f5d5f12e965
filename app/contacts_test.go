package app

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous/client"
)

// bookEngine is an engine with only what the contact book needs.
func bookEngine(t *testing.T) *Engine {
	n := nodetest.New(t)
	return &Engine{node: n, contacts: newContactSync(n, nil)}
}

func online(name string, devices ...peer.AddrInfo) client.Presence {
	last := devices[len(devices)-1]
	return client.Presence{Username: name, Online: true, Peer: last.ID, Addrs: last.Addrs, Devices: devices}
}

func device(t *testing.T, port string) peer.AddrInfo {
	return peer.AddrInfo{ID: nodetest.PeerID(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + port)}}
}

// TestEngineAppliesTheBook: the engine answers chat from the book and
// teaches the peerstore where the contacts' online devices are (the merge
// rules themselves are package contacts' tests).
func TestEngineAppliesTheBook(t *testing.T) {
	e := bookEngine(t)
	book := e.contacts
	phone, laptop := device(t, "1001"), device(t, "1002")

	e.contacts.pushed(client.Update{Presence: ptr(online("bob", phone, laptop))})
	if got, ok := book.Lookup("bob"); !ok || got != laptop.ID {
		t.Errorf("Lookup(bob): got %s, %v; want the laptop (latest login)", got, ok)
	}
	for _, d := range []peer.AddrInfo{phone, laptop} {
		if name, ok := book.UsernameOf(d.ID); !ok || name != "bob" {
			t.Errorf("UsernameOf(%s): got %q, %v; want bob", d.ID, name, ok)
		}
		if addrs := e.node.Peerstore().Addrs(d.ID); len(addrs) != 1 || !addrs[0].Equal(d.Addrs[0]) {
			t.Errorf("peerstore addresses of %s: got %v, want %v", d.ID, addrs, d.Addrs)
		}
	}

	e.contacts.pushed(client.Update{Presence: ptr(online("bob", phone))}) // the laptop logs out
	if addrs := e.node.Peerstore().Addrs(laptop.ID); len(addrs) != 0 {
		t.Errorf("the offline laptop's addresses stayed: %v", addrs)
	}

	e.contacts.pushed(client.Update{Contact: &client.ContactEvent{Change: client.ContactRemoved, Username: "bob"}})
	if _, ok := book.Lookup("bob"); ok {
		t.Error("removed bob is still a contact")
	}
	if addrs := e.node.Peerstore().Addrs(phone.ID); len(addrs) != 0 {
		t.Errorf("removed bob's addresses stayed: %v", addrs)
	}
	if got := e.contacts.listing(); len(got.Contacts) != 0 {
		t.Errorf("the engine's listing still shows %v", got.Contacts)
	}
}

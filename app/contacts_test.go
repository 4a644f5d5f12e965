package app

import (
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/apitype"
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

// TestListingReadDuringAPush: a listing read while the session pushed a
// change is not applied over it; the book is read again.
func TestListingReadDuringAPush(t *testing.T) {
	n := nodetest.New(t)
	phone := device(t, "1001")
	reads := 0
	var s *contactSync
	s = newContactSync(n, func(context.Context) (client.ContactBook, error) {
		reads++
		if reads == 1 {
			// bob accepts while the first listing is on its way, which
			// predates it.
			s.pushed(client.Update{Contact: &client.ContactEvent{Change: client.ContactAccepted, Username: "bob"}})
			return client.ContactBook{Outgoing: []string{"bob"}}, nil
		}
		return client.ContactBook{Accepted: []client.Presence{online("bob", phone)}}, nil
	})
	evs, err := s.read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if reads != 2 {
		t.Errorf("read the book %d times, want 2", reads)
	}
	if len(evs) != 1 || evs[0].Kind != apitype.EventPresence || !evs[0].Contact.Online || evs[0].Contact.Path != notConnected {
		t.Errorf("events: got %+v; want bob's presence, online, not connected", evs)
	}
	l := s.listing()
	if len(l.Contacts) != 1 || !l.Contacts[0].Online || len(l.Outgoing) != 0 {
		t.Errorf("book: got %+v; want bob online and no request", l)
	}
	if addrs := n.Peerstore().Addrs(phone.ID); len(addrs) != 1 {
		t.Errorf("peerstore addresses of bob's phone: got %v", addrs)
	}
}

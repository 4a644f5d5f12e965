package app

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous/client"
)

// bookEngine is an engine with only what the contact book needs.
func bookEngine(t *testing.T) *Engine {
	return &Engine{node: nodetest.New(t), book: newContactState()}
}

func online(name string, devices ...peer.AddrInfo) client.Presence {
	last := devices[len(devices)-1]
	return client.Presence{Username: name, Online: true, Peer: last.ID, Addrs: last.Addrs, Devices: devices}
}

func device(t *testing.T, port string) peer.AddrInfo {
	return peer.AddrInfo{ID: nodetest.PeerID(t), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/" + port)}}
}

// step is one push or listing applied to the book.
type step struct {
	presence *client.Presence
	event    *client.ContactEvent
	listing  *client.ContactBook
}

func (e *Engine) apply(s step) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case s.presence != nil:
		e.presenceLocked(*s.presence)
	case s.event != nil:
		e.contactEventLocked(*s.event)
	case s.listing != nil:
		e.applyListingLocked(*s.listing)
	}
}

func TestContactBookFollowsPushes(t *testing.T) {
	phone, laptop := device(t, "1001"), device(t, "1002")
	ev := func(c client.ContactChange, name string) step {
		return step{event: &client.ContactEvent{Change: c, Username: name}}
	}
	pr := func(p client.Presence) step { return step{presence: &p} }
	ls := func(b client.ContactBook) step { return step{listing: &b} }

	tests := []struct {
		name         string
		steps        []step
		wantContacts []string // accepted contacts
		wantOnline   []string
		wantIncoming []string
		wantOutgoing []string
	}{
		{
			name:         "request arrives",
			steps:        []step{ev(client.ContactRequested, "bob")},
			wantIncoming: []string{"bob"},
		},
		{
			name:         "accepted, presence follows",
			steps:        []step{ev(client.ContactRequested, "bob"), ev(client.ContactAccepted, "bob"), pr(online("bob", phone))},
			wantContacts: []string{"bob"},
			wantOnline:   []string{"bob"},
		},
		{
			name:         "presence overtakes the acceptance",
			steps:        []step{ls(client.ContactBook{Outgoing: []string{"bob"}}), pr(online("bob", phone)), ev(client.ContactAccepted, "bob")},
			wantContacts: []string{"bob"},
			wantOnline:   []string{"bob"},
		},
		{
			name:         "accepted, presence only in the listing",
			steps:        []step{ev(client.ContactAccepted, "bob"), ls(client.ContactBook{Accepted: []client.Presence{online("bob", phone)}})},
			wantContacts: []string{"bob"},
			wantOnline:   []string{"bob"},
		},
		{
			name: "a listing does not undo a newer push",
			steps: []step{
				pr(online("bob", phone)),
				pr(client.Presence{Username: "bob"}), // offline
				ls(client.ContactBook{Accepted: []client.Presence{online("bob", phone)}}),
			},
			wantContacts: []string{"bob"},
		},
		{
			name:         "removed, stale presence ignored",
			steps:        []step{pr(online("bob", phone)), ev(client.ContactRemoved, "bob"), pr(online("bob", phone))},
			wantContacts: nil,
		},
		{
			name: "removed, then accepted again",
			steps: []step{
				pr(online("bob", phone)), ev(client.ContactRemoved, "bob"),
				ev(client.ContactAccepted, "bob"), pr(online("bob", phone)),
			},
			wantContacts: []string{"bob"},
			wantOnline:   []string{"bob"},
		},
		{
			name:         "listing drops a contact removed meanwhile",
			steps:        []step{pr(online("bob", phone)), ls(client.ContactBook{Blocked: []string{"bob"}}), pr(online("bob", laptop))},
			wantContacts: nil,
		},
		{
			name:         "listing sets requests both ways",
			steps:        []step{ev(client.ContactRequested, "carol"), ls(client.ContactBook{Incoming: []string{"dave"}, Outgoing: []string{"erin"}})},
			wantIncoming: []string{"dave"},
			wantOutgoing: []string{"erin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := bookEngine(t)
			for _, s := range tt.steps {
				e.apply(s)
			}
			b := e.contactBook()
			var contacts, on []string
			for _, c := range b.Contacts {
				contacts = append(contacts, c.Username)
				if c.Online {
					on = append(on, c.Username)
				}
			}
			for _, d := range []struct {
				what      string
				got, want []string
			}{
				{"contacts", contacts, tt.wantContacts},
				{"online", on, tt.wantOnline},
				{"incoming", b.Incoming, tt.wantIncoming},
				{"outgoing", b.Outgoing, tt.wantOutgoing},
			} {
				if !slices.Equal(d.got, d.want) {
					t.Errorf("%s: got %q, want %q", d.what, d.got, d.want)
				}
			}
			if e.book.removed["bob"] {
				if _, ok := (contactBook{e}).Lookup("bob"); ok {
					t.Error("chat still finds removed bob")
				}
			}
		})
	}
}

// TestChatAcceptsEveryDeviceSendsToLatest: messages come from any online
// device of a contact and go to the one that logged in last; a device
// that goes offline loses its addresses.
func TestChatAcceptsEveryDeviceSendsToLatest(t *testing.T) {
	e := bookEngine(t)
	book := contactBook{e}
	phone, laptop := device(t, "1001"), device(t, "1002")

	e.apply(step{presence: ptr(online("bob", phone, laptop))})
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

	e.apply(step{presence: ptr(online("bob", phone))}) // the laptop logs out
	if got, _ := book.Lookup("bob"); got != phone.ID {
		t.Errorf("Lookup(bob) after the laptop left: got %s, want the phone", got)
	}
	if _, ok := book.UsernameOf(laptop.ID); ok {
		t.Error("the offline laptop still counts as bob")
	}
	if addrs := e.node.Peerstore().Addrs(laptop.ID); len(addrs) != 0 {
		t.Errorf("the offline laptop's addresses stayed: %v", addrs)
	}

	e.apply(step{event: &client.ContactEvent{Change: client.ContactRemoved, Username: "bob"}})
	if _, ok := book.Lookup("bob"); ok {
		t.Error("removed bob is still a contact")
	}
	if _, ok := book.UsernameOf(phone.ID); ok {
		t.Error("removed bob's phone still counts as bob")
	}
	if addrs := e.node.Peerstore().Addrs(phone.ID); len(addrs) != 0 {
		t.Errorf("removed bob's addresses stayed: %v", addrs)
	}
}

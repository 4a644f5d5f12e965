// Package contacts keeps the account's contact book as this device knows
// it: pure state, with no libp2p host, no network and no lock of its own.
//
// A Book takes inputs (the login snapshot, the session's presence and
// contact pushes, listings read from the rendezvous server, logout,
// forgetting the account) and returns, for each, an Update: the
// apitype.Events that show the change (presence and contact events,
// without connection paths, which the caller fills in) and the address
// changes the caller applies to its peerstore and connections, as plain
// data. Queries answer the chat service (which device a message goes to,
// whose device a peer is) and the API (the book's listing).
//
// A Book is not safe for concurrent use: its owner serialises every call
// (the engine holds a lock around each one).
package contacts

import (
	"cmp"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous/client"
)

// Book is the account's contact book. The login snapshot starts it; the
// session's pushes keep it current; a listing from the server (after
// login, after each contact event and operation) fills in what pushes do
// not carry: outgoing requests, blocks and the presence of a contact
// accepted during the session.
//
// The zero Book is not ready; use New.
type Book struct {
	accepted map[string]client.Presence
	// unseen are contacts accepted during this session whose presence has
	// not been pushed yet; a listing supplies it.
	unseen map[string]bool
	// removed are contacts removed during this session. A presence push
	// for one of them is stale (presence and contact events travel
	// separately) and ignored, until the contact is accepted again.
	removed                     map[string]bool
	incoming, outgoing, blocked map[string]bool
	// gen counts changes the server pushed, so that a listing read while
	// one arrived is not applied over it.
	gen uint64
	// session is true between Login and Logout: the server keeps the
	// book's presence current. Without it nobody can say who is online.
	session bool
}

// New returns an empty book, without a session.
func New() *Book {
	b := &Book{}
	b.reset()
	return b
}

func (b *Book) reset() {
	*b = Book{
		accepted: make(map[string]client.Presence),
		unseen:   make(map[string]bool),
		removed:  make(map[string]bool),
		incoming: make(map[string]bool),
		outgoing: make(map[string]bool),
		blocked:  make(map[string]bool),
	}
}

// Update is what an input changed: the events to publish and the address
// changes to apply, in order.
type Update struct {
	// Events show the change: EventPresence (Contact set, Path empty: the
	// caller fills in how it is connected) and EventContact.
	Events []apitype.Event
	// Addrs are the address changes, to apply in order.
	Addrs []AddrChange
}

// AddrChange is what the caller's peerstore must learn about one device
// of a contact.
type AddrChange struct {
	Device peer.ID
	// Gone: the device is offline or no longer a contact's; forget its
	// addresses. Addrs and Relays are nil then.
	Gone bool
	// Addrs replace what the peerstore holds for the device.
	Addrs []ma.Multiaddr
	// Relays are the supernodes the device's circuit addresses name. A
	// relayed connection to the device through any other supernode is
	// abandoned (the device moved off it: it failed or left): close it,
	// so that new streams dial the current addresses instead.
	Relays []peer.ID
}

func (u *Update) add(o Update) {
	u.Events = append(u.Events, o.Events...)
	u.Addrs = append(u.Addrs, o.Addrs...)
}

// Restore starts the book from what a saved session said: the contacts,
// offline, with the devices they had. It is for a device that starts
// while the rendezvous server may be down; it changes no addresses.
func (b *Book) Restore(contacts []client.Presence) {
	for _, p := range contacts {
		b.accepted[p.Username] = p
	}
}

// Login starts the book from a login snapshot: the contacts with their
// presence, and the users asking to become contacts. The book has a
// session until Logout.
func (b *Book) Login(contacts []client.Presence, incoming []string) Update {
	var u Update
	keep := make(map[string]bool, len(contacts))
	for _, p := range contacts {
		keep[p.Username] = true
	}
	for _, name := range slices.Sorted(maps.Keys(b.accepted)) {
		if !keep[name] {
			u.add(b.drop(name))
		}
	}
	b.session = true
	b.gen++
	clear(b.unseen)
	clear(b.removed)
	clear(b.incoming)
	for _, p := range contacts {
		u.add(b.setPresence(p))
		u.Events = append(u.Events, presenceEvent(p))
	}
	for _, name := range incoming {
		b.incoming[name] = true
		delete(b.outgoing, name)
		u.Events = append(u.Events, contactEvent(name, client.ContactRequested))
	}
	return u
}

// Logout ends the session: every contact shows offline, since nobody tells
// this device about presence while it has no session, until the next
// Login's snapshot. Addresses stay (messages go to the device seen last).
func (b *Book) Logout() {
	b.session = false
	for name, p := range b.accepted {
		p.Online = false
		b.accepted[name] = p
	}
}

// Forget empties the book (the device no longer acts for the account),
// and forgets where every contact's device is.
func (b *Book) Forget() Update {
	var u Update
	for _, name := range slices.Sorted(maps.Keys(b.accepted)) {
		u.add(b.drop(name))
	}
	b.reset()
	return u
}

// Presence applies a pushed presence. A push for a contact removed during
// the session is stale and ignored (no events); one for a user the book
// does not know yet is a contact whose acceptance event is still on its
// way (the server pushes presence to contacts only).
func (b *Book) Presence(p client.Presence) Update {
	if b.removed[p.Username] {
		return Update{}
	}
	if _, ok := b.accepted[p.Username]; !ok {
		b.gen++
		delete(b.incoming, p.Username)
		delete(b.outgoing, p.Username)
	}
	delete(b.unseen, p.Username)
	u := b.setPresence(p)
	u.Events = append(u.Events, presenceEvent(p))
	return u
}

// ContactEvent applies a pushed change to the book. A request from a
// contact and an unknown change are ignored (no events).
func (b *Book) ContactEvent(ev client.ContactEvent) Update {
	var u Update
	name := ev.Username
	b.gen++
	switch ev.Change {
	case client.ContactRequested:
		if _, ok := b.accepted[name]; ok {
			return u
		}
		b.incoming[name] = true
	case client.ContactAccepted:
		delete(b.incoming, name)
		delete(b.outgoing, name)
		delete(b.removed, name)
		if _, ok := b.accepted[name]; !ok {
			// Presence follows as a push, or with the next listing.
			b.accepted[name] = client.Presence{Username: name}
			b.unseen[name] = true
		}
	case client.ContactRemoved:
		u.add(b.drop(name))
		delete(b.incoming, name)
		delete(b.outgoing, name)
	default:
		return u
	}
	u.Events = append(u.Events, contactEvent(name, ev.Change))
	return u
}

// Gen counts the changes the server pushed. Read it before reading a
// listing, and give it to ApplyListing.
func (b *Book) Gen() uint64 { return b.gen }

// ApplyListing makes the book what the server listed, keeping presence
// that pushes already delivered. gen is what Gen said before the listing
// was read: if the server pushed a change since, the listing may predate
// it, and nothing is applied (ok is false; read it again).
func (b *Book) ApplyListing(l client.ContactBook, gen uint64) (u Update, ok bool) {
	if gen != b.gen {
		return Update{}, false
	}
	listed := make(map[string]bool, len(l.Accepted))
	for _, p := range l.Accepted {
		listed[p.Username] = true
		_, known := b.accepted[p.Username]
		if known && !b.unseen[p.Username] {
			continue
		}
		delete(b.unseen, p.Username)
		delete(b.removed, p.Username)
		u.add(b.setPresence(p))
		u.Events = append(u.Events, presenceEvent(p))
	}
	for _, name := range slices.Sorted(maps.Keys(b.accepted)) {
		if !listed[name] {
			u.add(b.drop(name))
			u.Events = append(u.Events, contactEvent(name, client.ContactRemoved))
		}
	}
	set := func(m map[string]bool, names []string) {
		clear(m)
		for _, n := range names {
			m[n] = true
		}
	}
	set(b.incoming, l.Incoming)
	set(b.outgoing, l.Outgoing)
	set(b.blocked, l.Blocked)
	return u, true
}

// setPresence records a contact's presence, and returns where each of the
// contact's devices is now.
func (b *Book) setPresence(p client.Presence) Update {
	var u Update
	var now []peer.AddrInfo
	if p.Online {
		now = DevicesOf(p)
	}
	if old, ok := b.accepted[p.Username]; ok {
		u.Addrs = append(u.Addrs, gone(DevicesOf(old), now)...)
	}
	b.accepted[p.Username] = p
	for _, d := range now {
		u.Addrs = append(u.Addrs, AddrChange{Device: d.ID, Addrs: d.Addrs, Relays: relaysNamed(d.Addrs)})
	}
	return u
}

// drop forgets a contact and where its devices are, and ignores its
// presence until it is accepted again.
func (b *Book) drop(name string) Update {
	var u Update
	if p, ok := b.accepted[name]; ok {
		u.Addrs = gone(DevicesOf(p), nil)
	}
	delete(b.accepted, name)
	delete(b.unseen, name)
	b.removed[name] = true
	return u
}

// gone lists the devices of old that are not in now.
func gone(old, now []peer.AddrInfo) []AddrChange {
	var out []AddrChange
	for _, d := range old {
		if !slices.ContainsFunc(now, func(n peer.AddrInfo) bool { return n.ID == d.ID }) {
			out = append(out, AddrChange{Device: d.ID, Gone: true})
		}
	}
	return out
}

// Lookup is the device a message to username goes to, and whether
// username is a contact. While the book has a session, it is the device
// that logged in last, or "" when the contact is offline. Without a
// session (the rendezvous server is down) nobody can say who is online:
// it is the device seen last.
func (b *Book) Lookup(username string) (peer.ID, bool) {
	p, ok := b.accepted[username]
	if !ok {
		return "", false
	}
	if !b.session {
		return LastDevice(p), true
	}
	return LatestDevice(p), true
}

// UsernameOf is the contact whose device id is: one of its online devices
// while the book has a session, any device it had when seen last without
// one.
func (b *Book) UsernameOf(id peer.ID) (string, bool) {
	for name, p := range b.accepted {
		if (p.Online || !b.session) && p.HasDevice(id) {
			return name, true
		}
	}
	return "", false
}

// Contact is an accepted contact's presence.
func (b *Book) Contact(username string) (client.Presence, bool) {
	p, ok := b.accepted[username]
	return p, ok
}

// Contacts are the accepted contacts' presence, sorted by username.
func (b *Book) Contacts() []client.Presence {
	return slices.SortedFunc(maps.Values(b.accepted), func(x, y client.Presence) int {
		return cmp.Compare(x.Username, y.Username)
	})
}

// Listing is the book as the API shows it, without connection paths (the
// caller fills in each contact's Path). Every list is sorted and non-nil.
func (b *Book) Listing() apitype.ContactBook {
	contacts := b.Contacts()
	out := apitype.ContactBook{
		Contacts: make([]apitype.ContactStatus, 0, len(contacts)),
		Incoming: sortedKeys(b.incoming),
		Outgoing: sortedKeys(b.outgoing),
		Blocked:  sortedKeys(b.blocked),
	}
	for _, p := range contacts {
		out.Contacts = append(out.Contacts, Status(p))
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := slices.Sorted(maps.Keys(m))
	if out == nil {
		out = []string{}
	}
	return out
}

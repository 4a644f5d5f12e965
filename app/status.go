package app

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous/client"
)

// Status is a snapshot of the client for the UI and the CLI.
type Status struct {
	Peer string `json:"peer"`
	// Username is the account this device acts for; it stays set while a
	// lost session is being restored, and is "" when the device is not
	// enrolled or can no longer log in.
	Username string `json:"username,omitempty"`
	// LoggedIn is true while a rendezvous session is up.
	LoggedIn bool `json:"logged_in"`
	// Login says why the device is not logged in and what to do; nil
	// while it is logged in or still logging in for the first time.
	Login        *LoginProblem `json:"login_problem,omitempty"`
	Reachability string        `json:"reachability"`
	// PublicAddrs are the addresses AutoNAT v2 confirmed reachable from
	// the internet; empty behind a NAT.
	PublicAddrs []string `json:"public_addrs"`
	Addrs       []string `json:"addrs"`      // what contacts are told
	Supernodes  []string `json:"supernodes"` // holding a relay slot for us
	// Supernode says whether this device serves others as a supernode.
	Supernode relay.VolunteerState `json:"supernode"`
	DHT       DHTStatus            `json:"dht"`
	Contacts  []ContactStatus      `json:"contacts"`
	// Incoming are the users asking to become contacts (accept or
	// decline them); Outgoing the users this account asked.
	Incoming []string `json:"incoming"`
	Outgoing []string `json:"outgoing"`
}

// ContactStatus is a contact's presence and how we are connected to them.
type ContactStatus struct {
	Username string `json:"username"`
	Online   bool   `json:"online"`
	// Peer is the device that logged in last: messages go there.
	Peer  string   `json:"peer,omitempty"`
	Addrs []string `json:"addrs,omitempty"`
	// Devices are all the contact's online devices, oldest login first;
	// messages are accepted from each of them.
	Devices  []string  `json:"devices,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Path is "direct", "holepunched", "relayed via <supernode>" or
	// "not connected".
	Path string `json:"path"`
}

// Status returns the client's current state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	s := Status{
		Peer:     e.node.ID().String(),
		Username: e.username,
		LoggedIn: e.session != nil,
		Login:    e.problem,
	}
	e.mu.Unlock()
	s.Reachability = e.node.Reachability().String()
	for _, a := range e.node.PublicAddrs() {
		s.PublicAddrs = append(s.PublicAddrs, a.String())
	}
	s.Supernode = e.volunteer.State()
	s.Supernodes = idStrings(e.Supernodes())
	s.DHT = e.dhtStatus()
	for _, a := range e.advertisedAddrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	book := e.contactBook()
	s.Contacts, s.Incoming, s.Outgoing = book.Contacts, book.Incoming, book.Outgoing
	return s
}

// presenceStatus is a contact's presence without the connection path
// (which needs the node, see withPath).
func presenceStatus(p client.Presence) ContactStatus {
	c := ContactStatus{Username: p.Username, Online: p.Online, LastSeen: p.LastSeen, Path: "not connected"}
	if id := latestDevice(p); id != "" {
		c.Peer = id.String()
	}
	for _, a := range p.Addrs {
		c.Addrs = append(c.Addrs, a.String())
	}
	if p.Online {
		for _, d := range devicesOf(p) {
			c.Devices = append(c.Devices, d.ID.String())
		}
	}
	return c
}

// withPath fills in how we are connected to the contact's device.
func (e *Engine) withPath(c ContactStatus) ContactStatus {
	if id, err := peer.Decode(c.Peer); err == nil {
		c.Path = e.node.PathTo(id).String()
	}
	return c
}

func (e *Engine) contactStatus(p client.Presence) ContactStatus {
	return e.withPath(presenceStatus(p))
}

func idStrings(ids []peer.ID) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, id.String())
	}
	return out
}

// EventKind says what an Event is about.
type EventKind string

const (
	EventLogin EventKind = "login" // Username is set
	// EventLogout: the session was lost or closed; Login says why and
	// what happens next.
	EventLogout EventKind = "logout"
	// EventLoginStopped: the engine stopped logging in (the device was
	// revoked, the account deleted, or the device is not enrolled); Login
	// says why and what the user can do.
	EventLoginStopped EventKind = "login_stopped"
	EventPresence     EventKind = "presence" // Contact is set
	// EventContact: the contact book changed. Username is the other user;
	// Change is "requested" (they ask to become a contact), "accepted"
	// (they are a contact now) or "removed" (no longer a contact or
	// request).
	EventContact    EventKind = "contact"
	EventMessage    EventKind = "message"    // Message is set (incoming)
	EventDelivered  EventKind = "delivered"  // Message is set: a queued message was delivered or failed
	EventSupernodes EventKind = "supernodes" // Supernodes is set
)

// Event is something that happened in the engine.
type Event struct {
	Kind       EventKind      `json:"kind"`
	Username   string         `json:"username,omitempty"`
	Change     string         `json:"change,omitempty"`
	Login      *LoginProblem  `json:"login,omitempty"`
	Contact    *ContactStatus `json:"contact,omitempty"`
	Message    *chat.Message  `json:"message,omitempty"`
	Supernodes []peer.ID      `json:"supernodes,omitempty"`
}

// Subscribe returns a channel of events from now on and a function that
// ends the subscription and closes the channel. Events are delivered in
// order; if the reader falls more than buffer events behind, newer events
// are dropped for it (a UI re-reads Status then).
func (e *Engine) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			delete(e.subs, ch)
			close(ch)
		}
	}
}

// emitAll emits events built under e.mu, filling in connection paths.
func (e *Engine) emitAll(evs []Event) {
	for _, ev := range evs {
		if ev.Contact != nil {
			ev.Contact = ptr(e.withPath(*ev.Contact))
		}
		e.emit(ev)
	}
}

func (e *Engine) emit(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			log.Debugw("event subscriber too slow; dropping event", "kind", ev.Kind)
		}
	}
}

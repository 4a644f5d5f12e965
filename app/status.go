package app

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/rendezvous/client"
)

// Status is a snapshot of the client for the UI and the CLI.
type Status struct {
	Peer         string          `json:"peer"`
	Username     string          `json:"username,omitempty"` // "" when logged out
	LoggedIn     bool            `json:"logged_in"`
	Reachability string          `json:"reachability"`
	Addrs        []string        `json:"addrs"`      // what contacts are told
	Supernodes   []string        `json:"supernodes"` // holding a relay slot for us
	Contacts     []ContactStatus `json:"contacts"`
}

// ContactStatus is a contact's presence and how we are connected to them.
type ContactStatus struct {
	Username string    `json:"username"`
	Online   bool      `json:"online"`
	Peer     string    `json:"peer,omitempty"`
	Addrs    []string  `json:"addrs,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Path is "direct", "holepunched", "relayed via <supernode>" or
	// "not connected".
	Path string `json:"path"`
}

// Status returns the client's current state.
func (e *Engine) Status() Status {
	s := Status{
		Peer:         e.node.ID().String(),
		Username:     e.Username(),
		Reachability: e.node.Reachability().String(),
		Supernodes:   idStrings(e.Supernodes()),
		Contacts:     []ContactStatus{},
	}
	s.LoggedIn = s.Username != ""
	for _, a := range e.advertisedAddrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	for _, p := range e.sortedContacts() {
		s.Contacts = append(s.Contacts, e.contactStatus(p))
	}
	return s
}

func (e *Engine) contactStatus(p client.Presence) ContactStatus {
	c := ContactStatus{Username: p.Username, Online: p.Online, LastSeen: p.LastSeen, Path: "not connected"}
	if p.Peer != "" {
		c.Peer = p.Peer.String()
		c.Path = e.node.PathTo(p.Peer).String()
	}
	for _, a := range p.Addrs {
		c.Addrs = append(c.Addrs, a.String())
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

// EventKind says what an Event is about.
type EventKind string

const (
	EventLogin      EventKind = "login"      // Username is set
	EventLogout     EventKind = "logout"     // the session was lost or closed
	EventPresence   EventKind = "presence"   // Contact is set
	EventMessage    EventKind = "message"    // Message is set (incoming)
	EventDelivered  EventKind = "delivered"  // Message is set: a queued message was delivered or failed
	EventSupernodes EventKind = "supernodes" // Supernodes is set
)

// Event is something that happened in the engine.
type Event struct {
	Kind       EventKind      `json:"kind"`
	Username   string         `json:"username,omitempty"`
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

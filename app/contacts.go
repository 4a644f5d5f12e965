package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// ErrServerUnreachable means the rendezvous server did not answer.
var ErrServerUnreachable = errors.New("cannot reach the rendezvous server; check the network and try again")

// serverError marks an error that did not come from the server (a dial
// or stream failure) as ErrServerUnreachable. Errors the server answered
// (*rendezvous.StatusError) and cancellations pass unchanged.
func serverError(err error) error {
	var status *rendezvous.StatusError
	// A request refused before it was sent (ErrBadRequest) did not fail
	// for the network's sake either.
	if err == nil || errors.As(err, &status) || errors.Is(err, rendezvous.ErrBadRequest) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w (%w)", ErrServerUnreachable, err)
}

// contactState is the engine's copy of the account's contact book. The
// login snapshot starts it; the session's pushes keep it current; a
// listing from the server (after login, after each contact event and
// operation) fills in what pushes do not carry: outgoing requests, blocks
// and the presence of a contact accepted during the session. It is
// guarded by Engine.mu.
type contactState struct {
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
}

func newContactState() contactState {
	return contactState{
		accepted: make(map[string]client.Presence),
		unseen:   make(map[string]bool),
		removed:  make(map[string]bool),
		incoming: make(map[string]bool),
		outgoing: make(map[string]bool),
		blocked:  make(map[string]bool),
	}
}

// devicesOf is every device a presence lists (the most recent last).
func devicesOf(p client.Presence) []peer.AddrInfo {
	if len(p.Devices) > 0 {
		return p.Devices
	}
	if p.Peer != "" {
		return []peer.AddrInfo{{ID: p.Peer, Addrs: p.Addrs}}
	}
	return nil
}

// latestDevice is the device a message to the contact goes to: the one
// that logged in last, or "" when the contact is offline.
func latestDevice(p client.Presence) peer.ID {
	if !p.Online {
		return ""
	}
	return lastDevice(p)
}

// lastDevice is the device that logged in last, even if the contact is
// offline now ("" if the server never named one).
func lastDevice(p client.Presence) peer.ID {
	if p.Peer != "" {
		return p.Peer
	}
	if ds := p.Devices; len(ds) > 0 {
		return ds[len(ds)-1].ID
	}
	return ""
}

// setPresenceLocked records a contact's presence and teaches the
// peerstore where each of the contact's online devices is. Call with e.mu
// held.
func (e *Engine) setPresenceLocked(p client.Presence) {
	var now []peer.AddrInfo
	if p.Online {
		now = devicesOf(p)
	}
	if old, ok := e.book.accepted[p.Username]; ok {
		e.clearGoneLocked(devicesOf(old), now)
	}
	e.book.accepted[p.Username] = p
	for _, d := range now {
		e.node.Peerstore().ClearAddrs(d.ID)
		e.node.Peerstore().AddAddrs(d.ID, d.Addrs, peerstore.AddressTTL)
		e.closeAbandonedCircuits(d)
	}
}

// closeAbandonedCircuits closes relayed connections to a contact's device
// through supernodes it no longer advertises: it moved off them (they
// failed or left), so those connections are dead or about to be, and new
// streams must dial its current addresses instead of waiting on them.
func (e *Engine) closeAbandonedCircuits(d peer.AddrInfo) {
	current := relaysOf(d.Addrs)
	for _, c := range e.node.Network().ConnsToPeer(d.ID) {
		via, ok := node.RelayOf(c.RemoteMultiaddr())
		if !ok || slices.ContainsFunc(current, func(r peer.AddrInfo) bool { return r.ID == via }) {
			continue
		}
		log.Infow("contact moved off a supernode; closing the connection through it", "peer", d.ID, "supernode", via)
		go c.Close()
	}
}

// clearGoneLocked forgets the addresses of the devices in old that are
// not in now.
func (e *Engine) clearGoneLocked(old, now []peer.AddrInfo) {
	for _, d := range old {
		if !slices.ContainsFunc(now, func(n peer.AddrInfo) bool { return n.ID == d.ID }) {
			e.node.Peerstore().ClearAddrs(d.ID)
		}
	}
}

// dropContactLocked forgets a contact and where its devices are, and
// ignores its presence until it is accepted again.
func (e *Engine) dropContactLocked(name string) {
	if p, ok := e.book.accepted[name]; ok {
		e.clearGoneLocked(devicesOf(p), nil)
	}
	delete(e.book.accepted, name)
	delete(e.book.unseen, name)
	e.book.removed[name] = true
}

// resetBookLocked starts the book from a login snapshot, and returns the
// events that show it.
func (e *Engine) resetBookLocked(sess *client.Session) []apitype.Event {
	keep := make(map[string]bool, len(sess.Contacts))
	for _, p := range sess.Contacts {
		keep[p.Username] = true
	}
	for name := range e.book.accepted {
		if !keep[name] {
			e.dropContactLocked(name)
		}
	}
	b := &e.book
	b.gen++
	clear(b.unseen)
	clear(b.removed)
	clear(b.incoming)
	var evs []apitype.Event
	for _, p := range sess.Contacts {
		e.setPresenceLocked(p)
		evs = append(evs, apitype.Event{Kind: apitype.EventPresence, Contact: ptr(presenceStatus(p))})
	}
	for _, name := range sess.Incoming {
		b.incoming[name] = true
		delete(b.outgoing, name)
		evs = append(evs, apitype.Event{Kind: apitype.EventContact, Username: name, Change: client.ContactRequested.String()})
	}
	return evs
}

// forgetBookLocked empties the book (the account is gone).
func (e *Engine) forgetBookLocked() {
	for name := range e.book.accepted {
		e.dropContactLocked(name)
	}
	e.book = newContactState()
}

// markOfflineLocked shows every contact offline; nobody tells this device
// about presence while it has no session.
func (e *Engine) markOfflineLocked() {
	for name, p := range e.book.accepted {
		p.Online = false
		e.book.accepted[name] = p
	}
}

// presenceLocked applies a pushed presence, and returns the event that
// shows it (none for a stale push).
func (e *Engine) presenceLocked(p client.Presence) []apitype.Event {
	b := &e.book
	if b.removed[p.Username] {
		log.Debugw("ignoring presence of a removed contact", "contact", p.Username)
		return nil
	}
	if _, ok := b.accepted[p.Username]; !ok {
		// The server pushes presence to contacts only: this is a contact
		// whose acceptance event is still on its way.
		b.gen++
		delete(b.incoming, p.Username)
		delete(b.outgoing, p.Username)
	}
	delete(b.unseen, p.Username)
	e.setPresenceLocked(p)
	return []apitype.Event{{Kind: apitype.EventPresence, Contact: ptr(presenceStatus(p))}}
}

// contactEventLocked applies a pushed change to the contact book, and
// returns the event that shows it.
func (e *Engine) contactEventLocked(ev client.ContactEvent) []apitype.Event {
	b := &e.book
	name := ev.Username
	b.gen++
	switch ev.Change {
	case client.ContactRequested:
		if _, ok := b.accepted[name]; ok {
			return nil
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
		e.dropContactLocked(name)
		delete(b.incoming, name)
		delete(b.outgoing, name)
	default:
		log.Debugw("unknown contact event", "change", ev.Change, "contact", name)
		return nil
	}
	log.Infow("contact book changed", "contact", name, "change", ev.Change)
	return []apitype.Event{{Kind: apitype.EventContact, Username: name, Change: ev.Change.String()}}
}

// applyListingLocked makes the book what the server listed, keeping
// presence that pushes already delivered. It returns the events that
// show what changed.
func (e *Engine) applyListingLocked(l client.ContactBook) []apitype.Event {
	b := &e.book
	var evs []apitype.Event
	listed := make(map[string]bool, len(l.Accepted))
	for _, p := range l.Accepted {
		listed[p.Username] = true
		_, known := b.accepted[p.Username]
		if known && !b.unseen[p.Username] {
			continue
		}
		delete(b.unseen, p.Username)
		delete(b.removed, p.Username)
		e.setPresenceLocked(p)
		evs = append(evs, apitype.Event{Kind: apitype.EventPresence, Contact: ptr(presenceStatus(p))})
	}
	for name := range b.accepted {
		if !listed[name] {
			e.dropContactLocked(name)
			evs = append(evs, apitype.Event{Kind: apitype.EventContact, Username: name, Change: client.ContactRemoved.String()})
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
	return evs
}

// refreshSoon asks the book loop to read the contact book from the server.
func (e *Engine) refreshSoon() {
	select {
	case e.refresh <- struct{}{}:
	default:
	}
}

// bookLoop reads the contact book when asked.
func (e *Engine) bookLoop(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.refresh:
		}
		if err := e.refreshBook(ctx); err != nil && ctx.Err() == nil {
			log.Debugw("read contact book", "err", err)
		}
	}
}

// refreshBook reads the contact book from the server and applies it,
// unless the server pushed a change meanwhile; then it reads it again (a
// few times at most: the pushes keep the book current anyway).
func (e *Engine) refreshBook(ctx context.Context) error {
	e.refreshMu.Lock()
	defer e.refreshMu.Unlock()
	for range 3 {
		e.mu.Lock()
		gen := e.book.gen
		e.mu.Unlock()
		l, err := e.rdv.Contacts(ctx)
		if err != nil {
			return serverError(err)
		}
		e.mu.Lock()
		fresh := e.book.gen == gen
		var evs []apitype.Event
		if fresh {
			evs = e.applyListingLocked(l)
		}
		e.mu.Unlock()
		if fresh {
			e.emitAll(evs)
			return nil
		}
	}
	return nil
}

// contactOp runs a contact operation on the server and then reads the
// book again, so that the engine's view (Status, Contacts) shows its
// effect at once.
func (e *Engine) contactOp(ctx context.Context, username string, op func(context.Context, string) error) (string, error) {
	name, err := rendezvous.CanonicalUsername(username)
	if err != nil {
		return "", err
	}
	if err := op(ctx, name); err != nil {
		return name, serverError(err)
	}
	if err := e.refreshBook(ctx); err != nil {
		log.Debugw("read contact book", "err", err)
	}
	return name, nil
}

// RequestContact asks username to become a contact. It reports whether
// the two are contacts now (username had asked too). Otherwise username
// sees the request, now or at their next login, and accepts or declines
// it. The answer is the same whether or not username exists.
func (e *Engine) RequestContact(ctx context.Context, username string) (apitype.ContactRequestResult, error) {
	var res apitype.ContactRequestResult
	_, err := e.contactOp(ctx, username, func(ctx context.Context, name string) error {
		var err error
		res.Accepted, err = e.rdv.RequestContact(ctx, name)
		return err
	})
	return res, err
}

// AcceptContact accepts username's pending request; the two see each
// other's presence from now on.
func (e *Engine) AcceptContact(ctx context.Context, username string) error {
	_, err := e.contactOp(ctx, username, e.rdv.AcceptContact)
	return err
}

// DeclineContact drops username's pending request. username is not told.
func (e *Engine) DeclineContact(ctx context.Context, username string) error {
	_, err := e.contactOp(ctx, username, e.rdv.DeclineContact)
	return err
}

// RemoveContact ends a contact (both sides lose it), or withdraws a
// request this account made.
func (e *Engine) RemoveContact(ctx context.Context, username string) error {
	_, err := e.contactOp(ctx, username, e.rdv.RemoveContact)
	return err
}

// Block removes username as a contact, drops any request between the two
// and refuses username's future requests.
func (e *Engine) Block(ctx context.Context, username string) error {
	_, err := e.contactOp(ctx, username, e.rdv.Block)
	return err
}

// Unblock lifts a block; username may ask again.
func (e *Engine) Unblock(ctx context.Context, username string) error {
	_, err := e.contactOp(ctx, username, e.rdv.Unblock)
	return err
}

// Contacts reads the contact book from the server and returns it with
// each contact's presence and connection path.
func (e *Engine) Contacts(ctx context.Context) (apitype.ContactBook, error) {
	if err := e.refreshBook(ctx); err != nil {
		return apitype.ContactBook{}, err
	}
	return e.contactBook(), nil
}

// contactBook is the engine's current view of the book.
func (e *Engine) contactBook() apitype.ContactBook {
	e.mu.Lock()
	accepted := slices.SortedFunc(maps.Values(e.book.accepted), func(a, b client.Presence) int {
		return cmp.Compare(a.Username, b.Username)
	})
	out := apitype.ContactBook{
		Contacts: make([]apitype.ContactStatus, 0, len(accepted)),
		Incoming: sortedKeys(e.book.incoming),
		Outgoing: sortedKeys(e.book.outgoing),
		Blocked:  sortedKeys(e.book.blocked),
	}
	e.mu.Unlock()
	for _, p := range accepted {
		out.Contacts = append(out.Contacts, e.contactStatus(p))
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

// contactBook is the chat service's view of the contacts: messages come
// from any online device of a contact, and go to the one that logged in
// last. While this device has no session (the rendezvous server is down)
// nobody can say who is online: messages go to the device that was seen
// last, found through its DHT address record (see Engine.reach), and come
// from any device the contact had then.
type contactBook struct{ e *Engine }

func (b contactBook) Lookup(username string) (peer.ID, bool) {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	p, ok := b.e.book.accepted[username]
	if !ok {
		return "", false
	}
	if b.e.session == nil {
		return lastDevice(p), true
	}
	return latestDevice(p), true
}

func (b contactBook) UsernameOf(id peer.ID) (string, bool) {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	for name, p := range b.e.book.accepted {
		if (p.Online || b.e.session == nil) && p.HasDevice(id) {
			return name, true
		}
	}
	return "", false
}

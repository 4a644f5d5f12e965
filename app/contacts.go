package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/contacts"
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
	if err == nil || errors.As(err, &status) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w (%w)", ErrServerUnreachable, err)
}

// applyLocked applies what a change of the contact book says about the
// contacts' devices: the peerstore learns where each online device is and
// forgets the others, and relayed connections through supernodes a
// device left are closed. It returns the events to emit (after e.mu is
// released, see emitAll). Call with e.mu held, so that address changes
// apply in the order the book made them.
func (e *Engine) applyLocked(u contacts.Update) []apitype.Event {
	ps := e.node.Peerstore()
	for _, c := range u.Addrs {
		if c.Gone {
			ps.ClearAddrs(c.Device)
			continue
		}
		ps.ClearAddrs(c.Device)
		ps.AddAddrs(c.Device, c.Addrs, peerstore.AddressTTL)
		e.closeAbandonedCircuits(c.Device, c.Relays)
	}
	return u.Events
}

// closeAbandonedCircuits closes relayed connections to a contact's device
// through supernodes other than relays: it moved off them (they failed or
// left), so those connections are dead or about to be, and new streams
// must dial its current addresses instead of waiting on them.
func (e *Engine) closeAbandonedCircuits(d peer.ID, relays []peer.ID) {
	for _, c := range e.node.Network().ConnsToPeer(d) {
		via, ok := node.RelayOf(c.RemoteMultiaddr())
		if !ok || slices.Contains(relays, via) {
			continue
		}
		log.Infow("contact moved off a supernode; closing the connection through it", "peer", d, "supernode", via)
		go c.Close()
	}
}

// pushed applies an update the session pushed, and returns the events to
// emit.
func (e *Engine) pushed(u client.Update) []apitype.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case u.Presence != nil:
		evs := e.applyLocked(e.book.Presence(*u.Presence))
		if len(evs) == 0 {
			log.Debugw("ignoring presence of a removed contact", "contact", u.Presence.Username)
		}
		return evs
	case u.Contact != nil:
		evs := e.applyLocked(e.book.ContactEvent(*u.Contact))
		if len(evs) == 0 {
			log.Debugw("contact event changes nothing", "change", u.Contact.Change, "contact", u.Contact.Username)
			return nil
		}
		log.Infow("contact book changed", "contact", u.Contact.Username, "change", u.Contact.Change)
		return evs
	}
	return nil
}

// deviceContact is the status of the contact whose device id is (see
// pathWatcher), with Peer set to id; last names the contact to show when
// id belongs to no contact any more ("" for none).
func (e *Engine) deviceContact(id peer.ID, last string) (apitype.ContactStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	name, ok := e.book.UsernameOf(id)
	if !ok {
		name = last
	}
	if name == "" {
		return apitype.ContactStatus{}, false
	}
	c := apitype.ContactStatus{Username: name}
	if p, ok := e.book.Contact(name); ok {
		c = contacts.Status(p)
	}
	c.Peer = id.String()
	return c, true
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
		gen := e.book.Gen()
		e.mu.Unlock()
		l, err := e.rdv.Contacts(ctx)
		if err != nil {
			return serverError(err)
		}
		e.mu.Lock()
		u, fresh := e.book.ApplyListing(l, gen)
		evs := e.applyLocked(u)
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
	out := e.book.Listing()
	e.mu.Unlock()
	for i, c := range out.Contacts {
		out.Contacts[i] = e.withPath(c)
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
	return b.e.book.Lookup(username)
}

func (b contactBook) UsernameOf(id peer.ID) (string, bool) {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	return b.e.book.UsernameOf(id)
}

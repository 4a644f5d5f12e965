package app

import (
	"context"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous"
)

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
	evs, err := e.contacts.read(ctx)
	if err != nil {
		log.Debugw("read contact book", "err", err)
	}
	e.emitAll(evs)
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
	evs, err := e.contacts.read(ctx)
	e.emitAll(evs)
	if err != nil {
		return apitype.ContactBook{}, err
	}
	return e.contacts.listing(), nil
}

package testnet

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"slices"

	"github.com/parleynet/parley/rendezvous"
)

// SignIn makes c's device log in as c.Name: it registers the account, or
// enrols the device if the account exists (a reused testnet directory).
// It waits for the session, and for the relay reservations the client
// makes once it has the certificate supernodes admit it with.
func SignIn(ctx context.Context, c *Client, password string) error {
	if c.Engine.Username() != c.Name {
		_, err := c.Engine.Register(ctx, c.Name, password)
		if errors.Is(err, rendezvous.ErrUsernameTaken) || errors.Is(err, rendezvous.ErrDeviceTaken) {
			_, err = c.Engine.Enrol(ctx, c.Name, password)
		}
		if err != nil {
			return fmt.Errorf("sign in %s: %w", c.Name, err)
		}
	}
	return c.AwaitRelay(ctx)
}

// MakeContacts makes a and b contacts the way users do: a asks, b sees
// the request arrive and accepts it.
func MakeContacts(ctx context.Context, a, b *Client) error {
	res, err := a.Engine.RequestContact(ctx, b.Name)
	if err != nil {
		return fmt.Errorf("%s asks %s: %w", a.Name, b.Name, err)
	}
	if res.Accepted { // b had asked already
		return nil
	}
	if err := AwaitIncoming(ctx, b, a.Name); err != nil {
		return err
	}
	if err := b.Engine.AcceptContact(ctx, a.Name); err != nil {
		return fmt.Errorf("%s accepts %s: %w", b.Name, a.Name, err)
	}
	return nil
}

// AwaitIncoming waits until c sees a contact request from user.
func AwaitIncoming(ctx context.Context, c *Client, user string) error {
	return waitFor(ctx, c.Name+" sees the contact request of "+user, func() bool {
		return slices.Contains(c.Status().Incoming, user)
	})
}

// AwaitNotContact waits until c no longer has contact as a contact.
func AwaitNotContact(ctx context.Context, c *Client, contact string) error {
	return waitFor(ctx, c.Name+" no longer has "+contact+" as a contact", func() bool {
		return !slices.ContainsFunc(c.Status().Contacts, func(cs apitype.ContactStatus) bool { return cs.Username == contact })
	})
}

// AwaitPresence waits until c sees contact in a state that satisfies ok,
// and returns that state.
func AwaitPresence(ctx context.Context, c *Client, contact string, ok func(apitype.ContactStatus) bool) (apitype.ContactStatus, error) {
	var seen apitype.ContactStatus
	err := waitFor(ctx, c.Name+" sees the expected presence of "+contact, func() bool {
		for _, cs := range c.Status().Contacts {
			if cs.Username == contact && ok(cs) {
				seen = cs
				return true
			}
		}
		return false
	})
	return seen, err
}

// AwaitOnline waits until c sees contact online.
func AwaitOnline(ctx context.Context, c *Client, contact string) (apitype.ContactStatus, error) {
	return AwaitPresence(ctx, c, contact, func(cs apitype.ContactStatus) bool { return cs.Online })
}

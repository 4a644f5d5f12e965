package testnet

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/rendezvous"
)

// SignIn makes c's device log in as c.Name: it registers the account, or
// enrols the device if the account exists (a reused testnet directory),
// and waits for the session.
func SignIn(ctx context.Context, c *Client, password string) error {
	if c.Engine.Username() == c.Name {
		return nil
	}
	err := c.Engine.Register(ctx, c.Name, password)
	if errors.Is(err, rendezvous.ErrUsernameTaken) || errors.Is(err, rendezvous.ErrDeviceTaken) {
		err = c.Engine.Enrol(ctx, c.Name, password)
	}
	if err != nil {
		return fmt.Errorf("sign in %s: %w", c.Name, err)
	}
	return nil
}

// MakeContacts has a and b add each other.
func MakeContacts(ctx context.Context, a, b *Client) error {
	if _, err := a.Engine.AddContact(ctx, b.Name); err != nil {
		return err
	}
	accepted, err := b.Engine.AddContact(ctx, a.Name)
	if err != nil {
		return err
	}
	if !accepted {
		return fmt.Errorf("%s and %s added each other but are not contacts", a.Name, b.Name)
	}
	return nil
}

// AwaitPresence waits until c sees contact in a state that satisfies ok,
// and returns that state.
func AwaitPresence(ctx context.Context, c *Client, contact string, ok func(app.ContactStatus) bool) (app.ContactStatus, error) {
	var seen app.ContactStatus
	err := waitFor(ctx, c.Name+" sees the expected presence of "+contact, func() bool {
		for _, cs := range c.Engine.Status().Contacts {
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
func AwaitOnline(ctx context.Context, c *Client, contact string) (app.ContactStatus, error) {
	return AwaitPresence(ctx, c, contact, func(cs app.ContactStatus) bool { return cs.Online })
}

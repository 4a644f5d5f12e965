package testnet

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// Up starts a loopback network with two NAT-imitating clients, alice and
// bob, and walks through what a user does, printing each step to out: log
// in, reserve a supernode slot, become contacts, see presence, and chat
// both ways. It returns the running network; the caller closes it.
func Up(ctx context.Context, cfg Config, out io.Writer) (_ *Network, err error) {
	n, err := Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	say := func(who, format string, args ...any) {
		fmt.Fprintf(out, "%-11s %s\n", who, fmt.Sprintf(format, args...))
	}

	fmt.Fprintf(out, "Parley local network on 127.0.0.1, data in %s\n\n", n.Dir)
	say("rendezvous", "%s listening on %s (SQLite: %s)", n.Rendezvous.Node.ID(), n.Rendezvous.Node.Addrs()[0],
		filepath.Join(n.Dir, "rendezvous", "rendezvous.db"))
	for _, sn := range n.Supernodes {
		say("supernode", "%s listening on %s", sn.Node.ID(), sn.Node.Addrs()[0])
	}

	users := []struct{ name, password string }{{"alice", "alice-password"}, {"bob", "bob-password"}}
	clients := make([]*Client, len(users))
	for i, u := range users {
		c, err := n.AddClient(ctx, u.name)
		if err != nil {
			return nil, err
		}
		clients[i] = c
		say(u.name, "device %s behind an imitated NAT", c.Engine.Node().ID())
		if err := SignIn(ctx, c, u.password); err != nil {
			return nil, err
		}
		say(u.name, "logged in as %s (password %q); showed its certificate and reserved a relay slot on supernode %s",
			c.Engine.Username(), u.password, joinIDs(c.Engine.Supernodes()))
	}
	alice, bob := clients[0], clients[1]

	if err := MakeContacts(ctx, alice, bob); err != nil {
		return nil, err
	}
	say("alice", "asked bob to be a contact; bob saw the request and accepted: they are contacts")
	seen, err := AwaitOnline(ctx, alice, "bob")
	if err != nil {
		return nil, err
	}
	say("alice", "sees bob online on device %s at %s", seen.Peer, strings.Join(seen.Addrs, ", "))
	if _, err := AwaitOnline(ctx, bob, "alice"); err != nil {
		return nil, err
	}

	for _, m := range []struct {
		from, to *Client
		body     string
	}{
		{alice, bob, "Hi Bob! This is Alice, behind my NAT."},
		{bob, alice, "Hi Alice, got it through the supernode."},
	} {
		sent, err := m.from.Engine.Send(ctx, m.to.Name, m.body)
		if err != nil {
			return nil, err
		}
		say(m.from.Name, "→ %s %q: %s (id %s), %s", m.to.Name, sent.Body, sent.State, sent.ID[:8], sent.Path)
	}

	fmt.Fprintf(out, "\nThe network keeps running until Ctrl-C. Talk to the clients with the parley CLI:\n")
	for _, c := range clients {
		fmt.Fprintf(out, "  go run ./cmd/parley --data %s status\n", c.Dir)
	}
	fmt.Fprintf(out, "  go run ./cmd/parley --data %s send bob \"hello again\"\n", alice.Dir)
	fmt.Fprintf(out, "  go run ./cmd/parley --data %s history alice\n", bob.Dir)
	return n, nil
}

func joinIDs[T fmt.Stringer](ids []T) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

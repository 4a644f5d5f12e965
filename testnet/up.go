package testnet

import (
	"context"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parleynet/parley/dht/records"
)

// Up starts a loopback network with two NAT-imitating clients, alice and
// bob, and walks through what a user does, printing each step to out: log
// in, reserve a supernode slot, become contacts, see presence, and chat
// both ways. It returns the running network; the caller closes it.
//
// On a directory of an earlier run it does only what is not done yet: the
// users log in again (no new accounts), they stay contacts (no new
// request), and the demo messages already sent are shown, not sent again.
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
		enrolled := c.Engine.Username() == u.name // in an earlier run
		if err := SignIn(ctx, c, u.password); err != nil {
			return nil, err
		}
		how := "logged in as"
		if enrolled {
			how = "logged in again (account from an earlier run) as"
		}
		say(u.name, "%s %s (password %q); showed its certificate and reserved a relay slot on supernode %s",
			how, c.Engine.Username(), u.password, joinIDs(c.Engine.Supernodes()))
	}
	alice, bob := clients[0], clients[1]

	book, err := alice.Engine.Contacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("read alice's contacts: %w", err)
	}
	if slices.ContainsFunc(book.Contacts, func(c apitype.ContactStatus) bool { return c.Username == bob.Name }) {
		say("alice", "has bob as a contact since an earlier run")
	} else {
		if err := MakeContacts(ctx, alice, bob); err != nil {
			return nil, err
		}
		say("alice", "asked bob to be a contact; bob saw the request and accepted: they are contacts")
	}
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
		earlier, err := sentBefore(ctx, m.from, m.to.Name, m.body)
		if err != nil {
			return nil, err
		}
		if earlier != nil {
			say(m.from.Name, "→ %s %q: sent in an earlier run, %s (id %s), %s", m.to.Name, earlier.Body, earlier.State, earlier.ID[:8], earlier.Path)
			continue
		}
		sent, err := m.from.Engine.Send(ctx, m.to.Name, m.body)
		if err != nil {
			return nil, fmt.Errorf("%s sends to %s: %w", m.from.Name, m.to.Name, err)
		}
		say(m.from.Name, "→ %s %q: %s (id %s), %s", m.to.Name, sent.Body, sent.State, sent.ID[:8], sent.Path)
	}

	if err := lookupInDHT(ctx, alice, bob, say); err != nil {
		return nil, err
	}

	fmt.Fprintf(out, "\nThe network keeps running until Ctrl-C. Talk to the clients with the parley CLI:\n")
	for _, c := range clients {
		fmt.Fprintf(out, "  go run ./cmd/parley --data %s status\n", c.Dir)
	}
	fmt.Fprintf(out, "  go run ./cmd/parley --data %s send bob \"hello again\"\n", alice.Dir)
	fmt.Fprintf(out, "  go run ./cmd/parley --data %s history alice\n", bob.Dir)
	rdv := n.Rendezvous.Info()
	rdvAddr := fmt.Sprintf("%s/p2p/%s", rdv.Addrs[0], rdv.ID)
	fmt.Fprintf(out, "and look into the DHT with parley-dht:\n")
	fmt.Fprintf(out, "  go run ./cmd/parley-dht find-peer --rendezvous %s --trace %s\n", rdvAddr, bob.Engine.Node().ID())
	fmt.Fprintf(out, "  go run ./cmd/parley-dht supernodes --rendezvous %s\n", rdvAddr)
	fmt.Fprintf(out, "  go run ./cmd/parley-dht routing-table --rendezvous %s %s/p2p/%s\n", rdvAddr, n.Supernodes[0].Node.Addrs()[0], n.Supernodes[0].Node.ID())
	return n, nil
}

// sentBefore is the message from c to contact with body in c's history,
// or nil.
func sentBefore(ctx context.Context, c *Client, contact, body string) (*apitype.Message, error) {
	hist, err := c.Engine.History(ctx, apitype.HistoryQuery{Contact: contact, Limit: apitype.MaxHistoryLimit})
	if err != nil {
		return nil, fmt.Errorf("read %s's history with %s: %w", c.Name, contact, err)
	}
	for _, m := range hist {
		if !m.Incoming && m.Body == body {
			return &m, nil
		}
	}
	return nil, nil
}

func joinIDs[T fmt.Stringer](ids []T) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, ", ")
}

// lookupInDHT waits until bob has published his signed address record and
// has alice find it in the DHT, as she would while the rendezvous server
// is down.
func lookupInDHT(ctx context.Context, alice, bob *Client, say func(who, format string, args ...any)) error {
	if err := waitFor(ctx, "bob publishes his address record", func() bool {
		_, ok := bob.Engine.DHT().Published(records.KindAddr)
		return ok
	}); err != nil {
		return err
	}
	d := alice.Engine.DHT()
	tr := d.NewTrace(nil)
	r, err := d.LookupAddrs(tr.Context(ctx), bob.Engine.Node().ID())
	tr.Stop()
	if err != nil {
		return fmt.Errorf("alice looks bob up in the DHT: %w", err)
	}
	sum := tr.Summary()
	say(alice.Name, "found bob's signed address record in the DHT (seq %d, %d addresses, valid until %s): %d peers asked, answered at hop %d, %s",
		r.Seq, len(r.Addrs), r.Expires.Format(time.TimeOnly), sum.Queried, sum.Hops, sum.Duration.Round(time.Millisecond))
	return nil
}

package testnet

import (
	"cmp"
	"context"
	"fmt"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parleynet/parley/dht/records"
)

// Up starts a loopback network with cfg.Clients NAT-imitating clients
// (alice and bob by default, see DemoUsers) and walks through what a user
// does, printing each step to out: log in, reserve a supernode slot,
// become contacts (every client with every other), see presence, and
// chat (the first client greets each other one, who answers). It returns
// the running network; the caller closes it.
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

	users := DemoUsers(cmp.Or(cfg.Clients, 2))
	clients := make([]*Client, len(users))
	for i, u := range users {
		c, err := n.AddClient(ctx, u.Name)
		if err != nil {
			return nil, err
		}
		clients[i] = c
		say(u.Name, "device %s behind an imitated NAT", c.Engine.Node().ID())
		enrolled := c.Engine.Username() == u.Name // in an earlier run
		if err := SignIn(ctx, c, u.Password); err != nil {
			return nil, err
		}
		how := "logged in as"
		if enrolled {
			how = "logged in again (account from an earlier run) as"
		}
		say(u.Name, "%s %s (password %q); showed its certificate and reserved a relay slot on supernode %s",
			how, c.Engine.Username(), u.Password, joinIDs(c.Engine.Supernodes()))
	}
	for i, a := range clients {
		for _, b := range clients[i+1:] {
			if err := befriend(ctx, a, b, say); err != nil {
				return nil, err
			}
		}
	}
	first := clients[0]
	for _, c := range clients[1:] {
		for _, m := range []struct {
			from, to *Client
			body     string
		}{
			{first, c, fmt.Sprintf("Hi %s! This is %s, behind my NAT.", title(c.Name), title(first.Name))},
			{c, first, fmt.Sprintf("Hi %s, got it through the supernode.", title(first.Name))},
		} {
			if err := sayHello(ctx, m.from, m.to, m.body, say); err != nil {
				return nil, err
			}
		}
	}

	if err := lookupInDHT(ctx, first, clients[1], say); err != nil {
		return nil, err
	}

	fmt.Fprintf(out, "\nThe network keeps running until Ctrl-C. Open a client's web UI in a browser on this machine:\n")
	for _, c := range clients {
		cl, err := api.Dial(c.Dir)
		if err != nil {
			return nil, fmt.Errorf("the web UI link of %s: %w", c.Name, err)
		}
		fmt.Fprintf(out, "  %-6s %s\n", c.Name, cl.UILoginURL())
	}
	fmt.Fprintf(out, "(or: go run ./cmd/parley --data DIR ui). Talk to the clients with the parley CLI:\n")
	for i, c := range clients {
		peer := clients[(i+1)%len(clients)].Name
		fmt.Fprintf(out, "  go run ./cmd/parley --data %s status\n", c.Dir)
		fmt.Fprintf(out, "  go run ./cmd/parley --data %s send %s \"hello again\"\n", c.Dir, peer)
		fmt.Fprintf(out, "  go run ./cmd/parley --data %s history %s\n", c.Dir, peer)
	}
	rdv := n.Rendezvous.Info()
	rdvAddr := fmt.Sprintf("%s/p2p/%s", rdv.Addrs[0], rdv.ID)
	fmt.Fprintf(out, "and look into the DHT with parley-dht:\n")
	fmt.Fprintf(out, "  go run ./cmd/parley-dht find-peer --rendezvous %s --trace %s\n", rdvAddr, clients[1].Engine.Node().ID())
	fmt.Fprintf(out, "  go run ./cmd/parley-dht supernodes --rendezvous %s\n", rdvAddr)
	fmt.Fprintf(out, "  go run ./cmd/parley-dht routing-table --rendezvous %s %s/p2p/%s\n", rdvAddr, n.Supernodes[0].Node.Addrs()[0], n.Supernodes[0].Node.ID())
	return n, nil
}

// befriend makes a and b contacts unless they are since an earlier run,
// and waits until each sees the other online.
func befriend(ctx context.Context, a, b *Client, say func(who, format string, args ...any)) error {
	book, err := a.Engine.Contacts(ctx)
	if err != nil {
		return fmt.Errorf("read %s's contacts: %w", a.Name, err)
	}
	if slices.ContainsFunc(book.Contacts, func(c apitype.ContactStatus) bool { return c.Username == b.Name }) {
		say(a.Name, "has %s as a contact since an earlier run", b.Name)
	} else {
		if err := MakeContacts(ctx, a, b); err != nil {
			return err
		}
		say(a.Name, "asked %s to be a contact; %s saw the request and accepted: they are contacts", b.Name, b.Name)
	}
	seen, err := AwaitOnline(ctx, a, b.Name)
	if err != nil {
		return err
	}
	say(a.Name, "sees %s online on device %s at %s", b.Name, seen.Peer, strings.Join(seen.Addrs, ", "))
	_, err = AwaitOnline(ctx, b, a.Name)
	return err
}

// sayHello sends body from one client to another, unless it was sent in
// an earlier run, and says how it went.
func sayHello(ctx context.Context, from, to *Client, body string, say func(who, format string, args ...any)) error {
	earlier, err := sentBefore(ctx, from, to.Name, body)
	if err != nil {
		return err
	}
	if earlier != nil {
		say(from.Name, "→ %s %q: sent in an earlier run, %s (id %s), %s", to.Name, earlier.Body, earlier.State, earlier.ID[:8], earlier.Path)
		return nil
	}
	sent, err := from.Engine.Send(ctx, to.Name, body)
	if err != nil {
		return fmt.Errorf("%s sends to %s: %w", from.Name, to.Name, err)
	}
	say(from.Name, "→ %s %q: %s (id %s), %s", to.Name, sent.Body, sent.State, sent.ID[:8], sent.Path)
	return nil
}

// title is name with its first letter in upper case.
func title(name string) string {
	if name == "" {
		return name
	}
	return strings.ToUpper(name[:1]) + name[1:]
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

package testnet

import (
	"context"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/dht/records"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
)

// TestChatWhileRendezvousDown: with the rendezvous server down, a new
// supernode joins, and both supernodes alice and bob use crash. They find
// the new one announced in the DHT (it is in no list the directory ever
// handed out) and move to it. Nobody can tell alice where bob went but
// bob's signed address record in the DHT: her message reaches him through
// the new supernode, and his answer reaches her the same way. Then bob's
// device restarts, still during the outage, and is reached again.
func TestChatWhileRendezvousDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, Config{Dir: t.TempDir(), Supernodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close network: %v", err)
		}
	})
	alice, bob := startPair(t, ctx, n)
	for _, c := range []*Client{alice, bob} {
		if err := c.AwaitRelay(ctx); err != nil {
			t.Fatal(err)
		}
		awaitRecord(t, c, nil)
	}

	if err := n.StopRendezvous(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{alice, bob} {
		tstest.WaitFor(t, waitTimeout, func() error {
			if c.Status().LoggedIn {
				return fmt.Errorf("%s does not notice the server is gone: still logged in", c.Name)
			}
			return nil
		})
	}
	old := slices.Clone(n.Supernodes)
	fresh, err := n.AddSupernode()
	if err != nil {
		t.Fatal(err)
	}
	// Both find it in the DHT (and so hold a DHT server that outlives the
	// old supernodes in their routing tables) before those crash.
	for _, c := range []*Client{alice, bob} {
		tstest.WaitFor(t, waitTimeout, func() error {
			found, err := c.Engine.DHT().FindSupernodes(ctx, 0)
			if err != nil || !slices.ContainsFunc(found, func(ai peer.AddrInfo) bool { return ai.ID == fresh.Node.ID() }) {
				return fmt.Errorf("the new supernode %s is not announced in the DHT: %s finds %v, %v", fresh.Node.ID(), c.Name, found, err)
			}
			return nil
		})
	}
	for _, s := range old {
		if err := n.KillSupernode(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*Client{alice, bob} {
		c.relays = 1
		tstest.WaitFor(t, waitTimeout, func() error {
			if got, want := c.Engine.Supernodes(), []peer.ID{fresh.Node.ID()}; !slices.Equal(got, want) {
				return fmt.Errorf("%s reserves on %v, want the new supernode %v", c.Name, got, want)
			}
			return nil
		})
	}
	left := fresh
	via := func(a string) bool { return strings.Contains(a, left.Node.ID().String()+"/p2p-circuit") }
	rec := awaitRecord(t, bob, via)
	// The record the new supernode's DHT holds is bob's new one.
	stored, err := left.DHT.LookupAddrs(ctx, bob.Engine.Node().ID())
	if err != nil {
		t.Fatalf("the new supernode cannot find bob's record: %v", err)
	}
	if stored.Seq < rec.Seq {
		t.Errorf("stored record seq %d, bob published %d", stored.Seq, rec.Seq)
	}

	sent, err := alice.Engine.Send(ctx, "bob", "are you still there?")
	if err != nil {
		t.Fatal(err)
	}
	got := awaitMessage(t, ctx, bob, "alice", sent.ID)
	if got.Body != "are you still there?" {
		t.Errorf("bob got %q", got.Body)
	}
	wantPath := "relayed via " + left.Node.ID().String()
	tstest.WaitFor(t, waitTimeout, func() error {
		m, err := message(t, ctx, alice, "bob", sent.ID)
		if err != nil {
			return err
		}
		if m.State != apitype.MessageDelivered || m.Path != wantPath {
			return fmt.Errorf("alice's copy is %s with path %q, want delivered %s: %+v", m.State, m.Path, wantPath, m)
		}
		return nil
	})

	reply, err := bob.Engine.Send(ctx, "alice", "yes, on another supernode")
	if err != nil {
		t.Fatal(err)
	}
	if got := awaitMessage(t, ctx, alice, "bob", reply.ID); got.Body != "yes, on another supernode" {
		t.Errorf("alice got %q", got.Body)
	}

	// bob's device restarts during the outage: it remembers its account,
	// its certificate and its contacts, rejoins the DHT through the
	// supernode it found there, and alice's next message reaches it.
	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}
	bob = addClient(t, ctx, n, "bob")
	bob.relays = 1
	tstest.WaitFor(t, waitTimeout, func() error {
		if got, want := bob.Engine.Supernodes(), []peer.ID{fresh.Node.ID()}; !slices.Equal(got, want) {
			return fmt.Errorf("restarted bob reserves on %v, want the new supernode %v", got, want)
		}
		return nil
	})
	if st := bob.Status(); st.Username != "bob" || st.LoggedIn {
		t.Errorf("restarted bob: user %q, logged in %v; want bob, not logged in", st.Username, st.LoggedIn)
	}
	again, err := alice.Engine.Send(ctx, "bob", "welcome back")
	if err != nil {
		t.Fatal(err)
	}
	if got := awaitMessage(t, ctx, bob, "alice", again.ID); got.Body != "welcome back" {
		t.Errorf("restarted bob got %q", got.Body)
	}

	// The server comes back: presence takes over again.
	if err := n.StartRendezvous(); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitPresence(ctx, alice, "bob", func(c apitype.ContactStatus) bool {
		return c.Online && slices.ContainsFunc(c.Addrs, via)
	}); err != nil {
		t.Fatal(err)
	}
}

// awaitRecord waits until c has published an address record with a
// circuit address and, if want is given, an address want accepts. It
// returns the record.
func awaitRecord(t *testing.T, c *Client, want func(string) bool) records.Record {
	t.Helper()
	var rec records.Record
	tstest.WaitFor(t, waitTimeout, func() error {
		r, ok := c.Engine.DHT().Published(records.KindAddr)
		if !ok {
			return fmt.Errorf("%s has published no address record", c.Name)
		}
		rec = r
		var addrs []string
		for _, a := range r.Addrs {
			addrs = append(addrs, a.String())
		}
		if want != nil && !slices.ContainsFunc(addrs, want) {
			return fmt.Errorf("%s's address record %v lacks the address wanted", c.Name, addrs)
		}
		if !slices.ContainsFunc(r.Addrs, node.IsCircuit) {
			return fmt.Errorf("%s's address record %v has no circuit address", c.Name, addrs)
		}
		return nil
	})
	return rec
}

package testnet

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
)

// TestMailboxDeliversWhenNeverOnlineTogether: alice sends to bob while
// bob's daemon is stopped, then stops hers; bob starts and finds the
// messages, fetched from the mailbox on the rendezvous server, exactly
// once and in order after the one delivered directly before; the server
// keeps no mail for bob once bob acknowledged it.
func TestMailboxDeliversWhenNeverOnlineTogether(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	bobDevice := bob.Engine.Node().ID()

	first, err := alice.Engine.Send(ctx, "bob", "hello while we are both here")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, bob, "alice", first.ID)

	awaitMailboxKey(t, ctx, n, bob)

	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitPresence(ctx, alice, "bob", func(c apitype.ContactStatus) bool { return !c.Online }); err != nil {
		t.Fatal(err)
	}
	bodies := []string{"are you there?", "I will be away when you are back"}
	var ids []string
	for _, body := range bodies {
		m, err := alice.Engine.Send(ctx, "bob", body)
		if err != nil {
			t.Fatal(err)
		}
		if m.State != apitype.MessageQueued {
			t.Fatalf("send to offline bob: got state %s, want queued", m.State)
		}
		ids = append(ids, m.ID)
	}
	// alice's copies wait on the server: not delivered, since nothing
	// says bob has them.
	for _, id := range ids {
		tstest.WaitFor(t, waitTimeout, func() error {
			m, err := message(t, ctx, alice, "bob", id)
			if err != nil {
				return err
			}
			if m.State != apitype.MessageSent {
				return fmt.Errorf("alice's copy of %s is %s, want sent", id, m.State)
			}
			return nil
		})
	}
	if got, err := n.Rendezvous.store.CountMail(ctx, bobDevice, time.Now()); err != nil || got != len(ids) {
		t.Fatalf("mail waiting for bob's device: %d, %v; want %d", got, err, len(ids))
	}
	if err := n.StopClient(alice); err != nil {
		t.Fatal(err)
	}

	bob = addClient(t, ctx, n, "bob") // same data directory: same device, logs in by itself
	for _, id := range ids {
		awaitMessage(t, ctx, bob, "alice", id)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		got, err := n.Rendezvous.store.CountMail(ctx, bobDevice, time.Now())
		if err != nil || got != 0 {
			return fmt.Errorf("mail waiting for bob's device after his ack: %d, %v; want none", got, err)
		}
		return nil
	})
	// One message event each, though bob fetched at login and may have
	// been pushed mail_waiting too.
	checkMessageEvents(t, ctx, bob, ids)
	msgs := historyWith(t, ctx, bob, "alice")
	wantIDs := append([]string{first.ID}, ids...)
	wantBodies := append([]string{first.Body}, bodies...)
	if len(msgs) != len(wantIDs) {
		t.Fatalf("bob's history with alice: %d messages, want %d: %+v", len(msgs), len(wantIDs), msgs)
	}
	for i, m := range msgs {
		if m.ID != wantIDs[i] || m.Body != wantBodies[i] || m.From != "alice" || m.To != "bob" || !m.Incoming || m.State != apitype.MessageReceived {
			t.Errorf("bob's message %d: got %+v, want %s %q from alice, received", i, m, wantIDs[i], wantBodies[i])
		}
		if i > 0 && m.Path != app.MailboxPath {
			t.Errorf("bob's message %d: path %q, want %q", i, m.Path, app.MailboxPath)
		}
	}
}

// awaitMailboxKey waits until c's device has its mailbox key on the
// server (it publishes it after login).
func awaitMailboxKey(t *testing.T, ctx context.Context, n *Network, c *Client) {
	t.Helper()
	user, err := n.Rendezvous.store.UserByName(ctx, c.Name)
	if err != nil {
		t.Fatal(err)
	}
	device := c.Engine.Node().ID()
	tstest.WaitFor(t, waitTimeout, func() error {
		keys, err := n.Rendezvous.store.DeviceKeys(ctx, user.ID)
		if err != nil || len(keys) != 1 || keys[0].Device != device {
			return fmt.Errorf("%s's device keys on the server: %v, %v; want its device's", c.Name, keys, err)
		}
		return nil
	})
}

// checkMessageEvents checks that c emitted exactly one message event for
// each of ids since it started.
func checkMessageEvents(t *testing.T, ctx context.Context, c *Client, ids []string) {
	t.Helper()
	last := c.Status().EventSeq
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, err := c.Engine.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	for ev := range evs {
		if ev.Kind == apitype.EventMessage && ev.Message != nil {
			events[ev.Message.ID]++
		}
		if ev.Seq >= last {
			break
		}
	}
	for _, id := range ids {
		if events[id] != 1 {
			t.Errorf("%s's message events for %s: %d, want 1", c.Name, id, events[id])
		}
	}
}

// TestMailboxThenDirectDelivery: a message on the server turns delivered
// when bob's device has it: it acknowledges it over chat, or sends a
// delivery receipt for what it fetched. alice stays online when bob
// returns, so bob gets it both from the mailbox and directly, and keeps
// it once.
func TestMailboxThenDirectDelivery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	awaitMailboxKey(t, ctx, n, bob)
	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitPresence(ctx, alice, "bob", func(c apitype.ContactStatus) bool { return !c.Online }); err != nil {
		t.Fatal(err)
	}
	m, err := alice.Engine.Send(ctx, "bob", "twice sent, once kept")
	if err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		got, err := message(t, ctx, alice, "bob", m.ID)
		if err != nil || got.State != apitype.MessageSent {
			return fmt.Errorf("alice's copy: %+v, %v; want sent", got, err)
		}
		return nil
	})

	bob = addClient(t, ctx, n, "bob")
	awaitMessage(t, ctx, bob, "alice", m.ID)
	tstest.WaitFor(t, waitTimeout, func() error {
		got, err := message(t, ctx, alice, "bob", m.ID)
		if err != nil || got.State != apitype.MessageDelivered {
			return fmt.Errorf("alice's copy: %+v, %v; want delivered", got, err)
		}
		return nil
	})
	checkMessageEvents(t, ctx, bob, []string{m.ID})
	if msgs := historyWith(t, ctx, bob, "alice"); len(msgs) != 1 {
		t.Errorf("bob's history with alice: %+v, want the one message", msgs)
	}
}

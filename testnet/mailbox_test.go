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

	// bob's mailbox key is on the server (published after login).
	bobUser, err := n.Rendezvous.store.UserByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		keys, err := n.Rendezvous.store.DeviceKeys(ctx, bobUser.ID)
		if err != nil || len(keys) != 1 || keys[0].Device != bobDevice {
			return fmt.Errorf("bob's device keys on the server: %v, %v; want bob's device's", keys, err)
		}
		return nil
	})

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
			if m.State != apitype.MessageOnServer {
				return fmt.Errorf("alice's copy of %s is %s, want on_server", id, m.State)
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
	last := bob.Status().EventSeq
	evs, err := bob.Engine.Watch(ctx, 0)
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
			t.Errorf("bob's message events for %s: %d, want 1", id, events[id])
		}
	}
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

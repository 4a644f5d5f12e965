package testnet

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
)

// TestEveryDeviceOfAUser: alice and bob have two devices each. A message
// reaches both of the recipient's devices and shows on the sender's other
// device; reading on one device reads everywhere and tells the sender; a
// device that was off catches up, and every device of a user shows the
// same history (same messages, order and states); a revoked device gets
// nothing more.
func TestEveryDeviceOfAUser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	laptop := enrolDevice(t, ctx, n, "alice-laptop", "alice")
	phone := enrolDevice(t, ctx, n, "bob-phone", "bob")
	awaitDeviceKeys(t, ctx, n, "alice", 2)
	awaitDeviceKeys(t, ctx, n, "bob", 2)

	// alice → bob: both of bob's devices, and alice's laptop.
	hello, err := alice.Engine.Send(ctx, "bob", "hello, both of you")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, bob, "alice", hello.ID)
	awaitMessage(t, ctx, phone, "alice", hello.ID)
	awaitState(t, ctx, laptop, "bob", hello.ID, apitype.MessageDelivered)
	if m, _ := message(t, ctx, laptop, "bob", hello.ID); m.Incoming || m.From != "alice" || m.Body != hello.Body {
		t.Errorf("alice's laptop shows %+v, want alice's message as sent", m)
	}

	// bob answers from his phone: alice's devices get it, bob's other
	// device shows it as sent by him.
	reply, err := phone.Engine.Send(ctx, "alice", "from my phone")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, alice, "bob", reply.ID)
	awaitMessage(t, ctx, laptop, "bob", reply.ID)
	awaitState(t, ctx, bob, "alice", reply.ID, apitype.MessageDelivered)

	// bob reads on his first device: the phone has nothing unread, and
	// alice's devices see hello read.
	if res, err := bob.Engine.MarkRead(ctx, "alice"); err != nil || res.Marked != 1 {
		t.Fatalf("bob MarkRead: %+v, %v; want 1 marked", res, err)
	}
	awaitUnread(t, ctx, phone, "alice", 0)
	awaitState(t, ctx, phone, "alice", hello.ID, apitype.MessageRead)
	awaitState(t, ctx, alice, "bob", hello.ID, apitype.MessageRead)
	awaitState(t, ctx, laptop, "bob", hello.ID, apitype.MessageRead)

	// The phone is off while alice writes twice; back on, it catches up.
	if err := n.StopClient(phone); err != nil {
		t.Fatal(err)
	}
	var missed []string
	for _, body := range []string{"while your phone was off", "and once more"} {
		m, err := alice.Engine.Send(ctx, "bob", body)
		if err != nil {
			t.Fatal(err)
		}
		awaitMessage(t, ctx, bob, "alice", m.ID)
		missed = append(missed, m.ID)
	}
	phone = addClient(t, ctx, n, "bob-phone") // same data directory: logs in by itself
	for _, id := range missed {
		awaitMessage(t, ctx, phone, "alice", id)
	}
	awaitSameHistory(t, ctx, "alice", bob, phone)
	awaitSameHistory(t, ctx, "bob", alice, laptop)

	// bob revokes the phone: it gets nothing more.
	phoneID := phone.Engine.Node().ID()
	if err := bob.Engine.RevokeDevice(ctx, phoneID.String()); err != nil {
		t.Fatal(err)
	}
	awaitDeviceKeys(t, ctx, n, "bob", 1)
	// Once alice's presence of bob no longer lists the phone.
	bobID := bob.Engine.Node().ID().String()
	if _, err := AwaitPresence(ctx, alice, "bob", func(c apitype.ContactStatus) bool {
		return c.Peer == bobID && slices.Equal(c.Devices, []string{bobID})
	}); err != nil {
		t.Fatal(err)
	}
	after, err := alice.Engine.Send(ctx, "bob", "after the revocation")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, bob, "alice", after.ID)
	awaitState(t, ctx, laptop, "bob", after.ID, apitype.MessageDelivered)
	// The laptop has its copy, so every deposit for the message is made:
	// none was for the phone.
	if _, err := message(t, ctx, phone, "alice", after.ID); err == nil {
		t.Error("the revoked phone got a message sent after the revocation")
	}
	if got, err := n.Rendezvous.store.CountMail(ctx, phoneID, time.Now()); err != nil || got != 0 {
		t.Errorf("mail waiting for the revoked phone: %d, %v; want none", got, err)
	}
}

// enrolDevice starts a client named name and enrols it as user's
// device.
func enrolDevice(t *testing.T, ctx context.Context, n *Network, name, user string) *Client {
	t.Helper()
	c := addClient(t, ctx, n, name)
	if _, err := c.Engine.Enrol(ctx, user, user+"-password"); err != nil {
		t.Fatal(err)
	}
	return c
}

// awaitDeviceKeys waits until user has want devices with a mailbox key
// on the server.
func awaitDeviceKeys(t *testing.T, ctx context.Context, n *Network, user string, want int) {
	t.Helper()
	u, err := n.Rendezvous.store.UserByName(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		keys, err := n.Rendezvous.store.DeviceKeys(ctx, u.ID)
		if err != nil || len(keys) != want {
			return fmt.Errorf("%s's device keys on the server: %d, %v; want %d", user, len(keys), err, want)
		}
		return nil
	})
}

// awaitState waits until c's history with contact shows message id in
// state want.
func awaitState(t *testing.T, ctx context.Context, c *Client, contact, id string, want apitype.MessageState) {
	t.Helper()
	tstest.WaitFor(t, waitTimeout, func() error {
		m, err := message(t, ctx, c, contact, id)
		if err != nil {
			return err
		}
		if m.State != want {
			return fmt.Errorf("%s's message %s is %s, want %s", c.Name, id, m.State, want)
		}
		return nil
	})
}

// awaitUnread waits until c's conversation with contact has want unread
// messages.
func awaitUnread(t *testing.T, ctx context.Context, c *Client, contact string, want int) {
	t.Helper()
	tstest.WaitFor(t, waitTimeout, func() error {
		convs, err := c.Engine.Conversations(ctx)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(convs, func(cv apitype.Conversation) bool { return cv.Contact == contact })
		if i < 0 || convs[i].Unread != want {
			return fmt.Errorf("%s's conversations %+v: want %d unread from %s", c.Name, convs, want, contact)
		}
		return nil
	})
}

// awaitSameHistory waits until the devices show the same history with
// contact: the same messages in the same order, in the same states.
func awaitSameHistory(t *testing.T, ctx context.Context, contact string, devices ...*Client) {
	t.Helper()
	line := func(ms []apitype.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%s %s→%s %s", m.ID, m.From, m.To, m.State))
		}
		return out
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		first := line(historyWith(t, ctx, devices[0], contact))
		for _, d := range devices[1:] {
			if got := line(historyWith(t, ctx, d, contact)); !slices.Equal(got, first) {
				return fmt.Errorf("%s's history with %s:\n%v\n%s's:\n%v", d.Name, contact, got, devices[0].Name, first)
			}
		}
		return nil
	})
}

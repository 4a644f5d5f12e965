package testnet

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/probe"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous"
)

func startNetwork(t *testing.T, ctx context.Context) *Network {
	t.Helper()
	n, err := Start(ctx, Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close network: %v", err)
		}
	})
	return n
}

func addClient(t *testing.T, ctx context.Context, n *Network, name string) *Client {
	t.Helper()
	c, err := n.AddClient(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startPair starts alice and bob, signed in, contacts of each other, and
// each seeing the other online.
func startPair(t *testing.T, ctx context.Context, n *Network) (alice, bob *Client) {
	t.Helper()
	alice, bob = addClient(t, ctx, n, "alice"), addClient(t, ctx, n, "bob")
	for _, c := range []*Client{alice, bob} {
		if err := SignIn(ctx, c, c.Name+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	if err := MakeContacts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{alice, bob} {
		other := map[*Client]string{alice: "bob", bob: "alice"}[c]
		if _, err := AwaitOnline(ctx, c, other); err != nil {
			t.Fatal(err)
		}
	}
	return alice, bob
}

func historyWith(t *testing.T, ctx context.Context, c *Client, contact string) []apitype.Message {
	t.Helper()
	msgs, err := c.Engine.History(ctx, apitype.HistoryQuery{Contact: contact, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// waitTimeout bounds each wait for the network to settle; every test's
// context bounds the whole.
const waitTimeout = time.Minute

// message returns the message with the given id from c's history with
// contact, or an error saying it is not there (yet).
func message(t *testing.T, ctx context.Context, c *Client, contact, id string) (apitype.Message, error) {
	t.Helper()
	msgs := historyWith(t, ctx, c, contact)
	i := slices.IndexFunc(msgs, func(m apitype.Message) bool { return m.ID == id })
	if i < 0 {
		return apitype.Message{}, fmt.Errorf("%s's history with %s (%d messages) lacks message %s", c.Name, contact, len(msgs), id)
	}
	return msgs[i], nil
}

// awaitMessage waits until c has stored the message with the given id.
func awaitMessage(t *testing.T, ctx context.Context, c *Client, contact, id string) apitype.Message {
	t.Helper()
	var got apitype.Message
	tstest.WaitFor(t, waitTimeout, func() error {
		var err error
		got, err = message(t, ctx, c, contact, id)
		return err
	})
	return got
}

func TestNATedUsersChatThroughSupernode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	supernode := n.Supernodes[0].Node.ID()
	alice := addClient(t, ctx, n, "alice")
	bob := addClient(t, ctx, n, "bob")
	// No certificate before login, so no supernode admits them yet.
	for _, c := range []*Client{alice, bob} {
		if got := c.Engine.Supernodes(); len(got) != 0 {
			t.Fatalf("%s reserved on %v before logging in, want none", c.Name, got)
		}
	}
	if err := SignIn(ctx, alice, "alice-password"); err != nil {
		t.Fatal(err)
	}
	if err := SignIn(ctx, bob, "bob-password"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{alice, bob} {
		if got := c.Engine.Supernodes(); !slices.Equal(got, []peer.ID{supernode}) {
			t.Fatalf("%s reserved on %v, want [%s]", c.Name, got, supernode)
		}
	}
	if err := MakeContacts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	bobSeen, err := AwaitOnline(ctx, alice, "bob")
	if err != nil {
		t.Fatal(err)
	}
	// Until bob sees alice too, he answers try-later and the message would
	// wait in alice's outbox; this test wants the immediate path.
	if _, err := AwaitOnline(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(bobSeen.Addrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit") }) {
		t.Fatalf("bob's presence carries no circuit address: %v", bobSeen.Addrs)
	}

	wantPath := "relayed via " + supernode.String()
	sent, err := alice.Engine.Send(ctx, "bob", "hello bob")
	if err != nil {
		t.Fatal(err)
	}
	if sent.Path != wantPath {
		t.Errorf("alice's message path: got %q, want %q", sent.Path, wantPath)
	}
	got := awaitMessage(t, ctx, bob, "alice", sent.ID)
	if got.Body != "hello bob" || got.From != "alice" || !got.Incoming {
		t.Errorf("bob got %+v, want body %q from alice", got, "hello bob")
	}
	if got.Path != wantPath {
		t.Errorf("bob's view of the path: got %q, want %q", got.Path, wantPath)
	}
	if p := alice.Engine.Node().PathTo(bob.Engine.Node().ID()); p.Kind != node.Relayed || p.Via != supernode {
		t.Errorf("alice→bob connection: got %v, want %s", p, wantPath)
	}

	reply, err := bob.Engine.Send(ctx, "alice", "hi alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := awaitMessage(t, ctx, alice, "bob", reply.ID); got.Body != "hi alice" || got.From != "bob" {
		t.Errorf("alice got %+v, want body %q from bob", got, "hi alice")
	}

	// The CLI's path: the daemon API reports the same.
	cli, err := api.Dial(alice.Dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cli.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Username != "alice" || len(st.Contacts) != 1 || st.Contacts[0].Path != wantPath {
		t.Errorf("API status: got %+v, want alice with bob %s", st, wantPath)
	}
}

func TestWrongPasswordRefusedAndAccountsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)

	// A second device tries to enrol as alice.
	laptop := addClient(t, ctx, n, "alice-laptop")
	_, err := laptop.Engine.Enrol(ctx, "alice", "not-alices-password")
	if !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Fatalf("enrol with wrong password: got %v, want ErrBadCredentials", err)
	}
	if !strings.Contains(err.Error(), "wrong username or password") {
		t.Errorf("error %q does not say what went wrong", err)
	}
	if laptop.Engine.Username() != "" {
		t.Fatalf("device logged in as %q after a refused enrolment", laptop.Engine.Username())
	}

	if err := n.RestartRendezvous(); err != nil {
		t.Fatal(err)
	}
	// Both accounts are still there: the name is taken, and the password
	// still works for a new device.
	_, err = laptop.Engine.Register(ctx, "bob", "another-password")
	if !errors.Is(err, rendezvous.ErrUsernameTaken) {
		t.Fatalf("register bob after restart: got %v, want ErrUsernameTaken", err)
	}
	if _, err := laptop.Engine.Enrol(ctx, "alice", "alice-password"); err != nil {
		t.Fatalf("enrol alice after restart: %v", err)
	}
	// The laptop leaves; the clients log in again by themselves, and
	// contacts survive too.
	if err := laptop.Engine.Close(); err != nil {
		t.Fatal(err)
	}
	aliceID := alice.Engine.Node().ID().String()
	if _, err := AwaitPresence(ctx, bob, "alice", func(c apitype.ContactStatus) bool { return c.Online && c.Peer == aliceID }); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.Engine.Send(ctx, "bob", "still here")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, bob, "alice", sent.ID)
}

// TestOutboxDeliversWhenContactReturns: a message to a contact who quit is
// queued, survives, and arrives when the contact starts the app again.
func TestOutboxDeliversWhenContactReturns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)

	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}
	seen, err := AwaitPresence(ctx, alice, "bob", func(c apitype.ContactStatus) bool { return !c.Online })
	if err != nil {
		t.Fatal(err)
	}
	if seen.LastSeen.IsZero() {
		t.Error("offline bob has no last-seen time")
	}
	queued, err := alice.Engine.Send(ctx, "bob", "see you when you are back")
	if err != nil {
		t.Fatal(err)
	}
	if queued.State != apitype.MessageQueued {
		t.Fatalf("send to offline bob: got state %s, want queued", queued.State)
	}

	bob = addClient(t, ctx, n, "bob") // same data directory: same device, logs in by itself
	got := awaitMessage(t, ctx, bob, "alice", queued.ID)
	if got.Body != "see you when you are back" {
		t.Errorf("bob got %q", got.Body)
	}
	// alice's copy turns delivered, with the path it took: the outbox's
	// stream through the supernode, or the mailbox (it was deposited while
	// bob was away, and bob's device sends a delivery receipt for what it
	// fetches), whichever reached bob first.
	relayed := "relayed via " + n.Supernodes[0].Node.ID().String()
	delivered := awaitMessage(t, ctx, alice, "bob", queued.ID)
	tstest.WaitFor(t, waitTimeout, func() error {
		m, err := message(t, ctx, alice, "bob", queued.ID)
		if err != nil {
			return err
		}
		delivered = m
		if m.State != apitype.MessageDelivered {
			return fmt.Errorf("alice's copy is %s, want delivered", m.State)
		}
		return nil
	})
	if delivered.Path != relayed && delivered.Path != app.MailboxPath {
		t.Errorf("delivered path: got %q, want %q or %q", delivered.Path, relayed, app.MailboxPath)
	}
}

// signedIn starts clients and signs each in as its name.
func signedIn(t *testing.T, ctx context.Context, n *Network, names ...string) []*Client {
	t.Helper()
	var out []*Client
	for _, name := range names {
		c := addClient(t, ctx, n, name)
		if err := SignIn(ctx, c, name+"-password"); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestContactRequestToOfflineUser: a request made while the other user is
// offline reaches them at their next login; once accepted, both see each
// other's presence and can chat.
func TestContactRequestToOfflineUser(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	users := signedIn(t, ctx, n, "alice", "bob")
	alice, bob := users[0], users[1]
	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}

	res, err := alice.Engine.RequestContact(ctx, "Bob")
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted {
		t.Fatal("request to bob: accepted at once, want pending")
	}
	if st := alice.Status(); !slices.Equal(st.Outgoing, []string{"bob"}) || len(st.Contacts) != 0 {
		t.Errorf("alice after asking: got outgoing %q and contacts %+v, want [bob] and none", st.Outgoing, st.Contacts)
	}

	bob = addClient(t, ctx, n, "bob") // same device: logs in by itself
	if err := AwaitIncoming(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Engine.AcceptContact(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{alice, bob} {
		tstest.WaitFor(t, waitTimeout, func() error {
			if st := c.Status(); len(st.Incoming) != 0 || len(st.Outgoing) != 0 {
				return fmt.Errorf("%s has pending requests: incoming %q, outgoing %q", c.Name, st.Incoming, st.Outgoing)
			}
			return nil
		})
	}
	sent, err := bob.Engine.Send(ctx, "alice", "thanks for the invite")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, alice, "bob", sent.ID)
}

// TestRemoveAndBlockDropTheContact: removing or blocking a contact drops
// it on the other side too; a blocked user's requests go nowhere.
func TestRemoveAndBlockDropTheContact(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)

	if err := alice.Engine.RemoveContact(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := AwaitNotContact(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := AwaitNotContact(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Engine.Send(ctx, "alice", "still there?"); !errors.Is(err, chat.ErrNotAContact) {
		t.Errorf("send after removal: got %v, want ErrNotAContact", err)
	}

	// They make up, then bob blocks alice.
	if err := MakeContacts(ctx, bob, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := bob.Engine.Block(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := AwaitNotContact(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}
	book, err := bob.Engine.Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(book.Contacts) != 0 || !slices.Equal(book.Blocked, []string{"alice"}) {
		t.Errorf("bob's book after blocking: got %+v, want alice blocked and no contacts", book)
	}
	// alice's request gets the same answer as any other, and goes nowhere.
	if res, err := alice.Engine.RequestContact(ctx, "bob"); err != nil || res.Accepted {
		t.Fatalf("request to a user who blocked alice: got %v, %v; want pending", res.Accepted, err)
	}
	if book, err = bob.Engine.Contacts(ctx); err != nil {
		t.Fatal(err)
	}
	if len(book.Incoming) != 0 {
		t.Errorf("bob sees requests from blocked alice: %q", book.Incoming)
	}

	if err := bob.Engine.Unblock(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := MakeContacts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
}

// TestRevokedDeviceStops: a user with two devices chats from both; the
// newest receives. Revoking one from the other stops its engine with a
// clear status, and contacts see it go offline.
func TestRevokedDeviceStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	aliceID := alice.Engine.Node().ID().String()

	laptop := addClient(t, ctx, n, "alice-laptop")
	if _, err := laptop.Engine.Enrol(ctx, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	laptopID := laptop.Engine.Node().ID().String()
	if len(laptop.Engine.Certificate()) == 0 {
		t.Error("logged-in laptop has no membership certificate")
	}
	if _, err := AwaitPresence(ctx, bob, "alice", func(c apitype.ContactStatus) bool {
		return c.Online && c.Peer == laptopID && slices.Equal(c.Devices, []string{aliceID, laptopID})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, laptop, "bob"); err != nil {
		t.Fatal(err)
	}

	// bob takes messages from either device, and writes to the newest.
	for _, from := range []*Client{alice, laptop} {
		sent, err := from.Engine.Send(ctx, "bob", "from "+from.Name)
		if err != nil {
			t.Fatal(err)
		}
		awaitMessage(t, ctx, bob, "alice", sent.ID)
	}
	reply, err := bob.Engine.Send(ctx, "alice", "got both")
	if err != nil {
		t.Fatal(err)
	}
	awaitMessage(t, ctx, laptop, "bob", reply.ID)

	stopped, err := laptop.Engine.Watch(ctx, laptop.Status().EventSeq)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Engine.RevokeDevice(ctx, laptopID); err != nil {
		t.Fatal(err)
	}
	// The laptop's engine stops logging in and tells its user.
	for ev := (apitype.Event{}); ev.Kind != apitype.EventLoginStopped; {
		select {
		case ev = <-stopped:
		case <-ctx.Done():
			t.Fatalf("the revoked laptop never stopped: %v", ctx.Err())
		}
		if ev.Kind == apitype.EventLoginStopped && ev.Login.Reason != apitype.LoginRevoked {
			t.Fatalf("laptop stopped for %s, want revoked", ev.Login.Reason)
		}
	}
	st := laptop.Status()
	if st.LoggedIn || st.Username != "" || st.Login == nil || !st.Login.Stopped || st.Login.Reason != apitype.LoginRevoked {
		t.Fatalf("revoked laptop's status: got %+v, want stopped as revoked", st)
	}
	if !strings.Contains(st.Login.Error, "revoked") || !strings.Contains(st.Login.Hint, "parley enrol") {
		t.Errorf("revoked laptop's status does not say what happened and what to do: %+v", st.Login)
	}
	if laptop.Engine.Certificate() != nil {
		t.Error("revoked laptop keeps its membership certificate")
	}
	if _, err := laptop.Engine.Send(ctx, "bob", "anyone?"); !errors.Is(err, chat.ErrNotLoggedIn) {
		t.Errorf("send from the revoked laptop: got %v, want ErrNotLoggedIn", err)
	}
	// It cannot come back with the same key.
	if _, err := laptop.Engine.Enrol(ctx, "alice", "alice-password"); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("enrol the revoked laptop again: got %v, want ErrDeviceRevoked", err)
	}

	// bob sees alice on her first device only.
	if _, err := AwaitPresence(ctx, bob, "alice", func(c apitype.ContactStatus) bool {
		return c.Online && c.Peer == aliceID && slices.Equal(c.Devices, []string{aliceID})
	}); err != nil {
		t.Fatal(err)
	}
	devs, err := alice.Engine.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(devs, func(d apitype.Device) bool { return d.Peer == laptopID })
	if len(devs) != 2 || i < 0 || devs[i].Revoked.IsZero() || devs[i].Online || !devs[1-i].Revoked.IsZero() || !devs[1-i].This {
		t.Errorf("alice's devices: got %+v, want this device active and the laptop revoked", devs)
	}
}

// TestProbeThroughSupernode streams 8 MiB from alice to bob's device
// through the supernode, and checks that a stranger's probe is refused.
func TestProbeThroughSupernode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	res, err := alice.Engine.Probe(ctx, "bob", 8<<20)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	want := "relayed via " + n.Supernodes[0].Node.ID().String()
	if !res.Intact || res.Bytes != 8<<20 || res.Path != want {
		t.Errorf("probe result %+v, want 8 MiB intact, %s", res, want)
	}
	t.Logf("8 MiB through the supernode: %.1f MB/s", res.MBPerSecond)

	carol := addClient(t, ctx, n, "carol")
	if err := SignIn(ctx, carol, "carol-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Engine.Probe(ctx, "bob", 1<<20); !errors.Is(err, chat.ErrNotAContact) {
		t.Errorf("carol probes bob, not a contact: got %v, want ErrNotAContact", err)
	}
	// Even if carol dials bob's device directly, bob refuses her probe.
	for _, a := range bob.Engine.Node().Addrs() {
		carol.Engine.Node().Peerstore().AddAddr(bob.Engine.Node().ID(), a, time.Minute)
	}
	if _, err := probe.Run(ctx, carol.Engine.Node(), bob.Engine.Node().ID(), 1<<20); !errors.Is(err, probe.ErrRefused) {
		t.Errorf("a stranger's raw probe: got %v, want ErrRefused", err)
	}
}

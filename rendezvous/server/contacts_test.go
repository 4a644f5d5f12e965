package server_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// contactEvent is shorthand for the event a session gets.
func contactEvent(change client.ContactChange, username string) client.ContactEvent {
	return client.ContactEvent{Change: change, Username: username}
}

// bookOf returns c's contact book, failing the test on error.
func bookOf(ctx context.Context, t *testing.T, c *client.Client) client.ContactBook {
	t.Helper()
	book, err := c.Contacts(ctx)
	if err != nil {
		t.Fatalf("Contacts: %v", err)
	}
	return book
}

func TestContactRequestNoEnumeration(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")
	register(ctx, t, ts, "bob", "password1")

	type answer struct {
		accepted bool
		err      error
	}
	want := answer{false, nil}
	for _, username := range []string{"bob", "nobody", "NoBody2", "bob"} {
		acc, err := alice.RequestContact(ctx, username)
		if got := (answer{acc, err}); got != want {
			t.Errorf("RequestContact(%q): got %v, %v, want %v, %v (the same for every user, existing or not)", username, acc, err, want.accepted, want.err)
		}
	}
}

func TestContactRequestWhileOffline(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")
	carol := register(ctx, t, ts, "carol", "password1")

	if acc, err := alice.RequestContact(ctx, "Bob"); err != nil || acc {
		t.Fatalf("RequestContact(Bob): got %v, %v, want false, nil", acc, err)
	}
	bobS := login(ctx, t, bob, nil)
	if want := []string{"alice"}; !slices.Equal(bobS.Incoming, want) {
		t.Errorf("bob's login: got incoming %v, want %v", bobS.Incoming, want)
	}
	if got, want := bookOf(ctx, t, bob).Incoming, []string{"alice"}; !slices.Equal(got, want) {
		t.Errorf("bob's incoming requests: got %v, want %v", got, want)
	}
	if got, want := bookOf(ctx, t, alice).Outgoing, []string{"bob"}; !slices.Equal(got, want) {
		t.Errorf("alice's outgoing requests: got %v, want %v", got, want)
	}
	if s := login(ctx, t, carol, nil); len(s.Incoming) != 0 {
		t.Errorf("carol's login: got incoming %v, want none", s.Incoming)
	}
}

func TestContactAccept(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice, aliceID := registerDevice(ctx, t, ts, "alice", "password1")
	bob, bobID := registerDevice(ctx, t, ts, "bob", "password1")
	carol := register(ctx, t, ts, "carol", "password1")
	dave := register(ctx, t, ts, "dave", "password1")
	aliceS := login(ctx, t, alice, nil)
	bobS := login(ctx, t, bob, nil)

	if _, err := alice.RequestContact(ctx, "bob"); err != nil {
		t.Fatalf("RequestContact(bob): %v", err)
	}
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactRequested, "alice"), nil)
	if err := bob.AcceptContact(ctx, "ALICE"); err != nil {
		t.Fatalf("AcceptContact(ALICE): %v", err)
	}

	// Each side gets the event and the other's presence, in either order.
	for _, tc := range []struct {
		s     *client.Session
		other string
		id    peer.ID
	}{{aliceS, "bob", bobID}, {bobS, "alice", aliceID}} {
		var event, presence bool
		for !event || !presence {
			u := nextUpdate(ctx, t, tc.s)
			switch {
			case u.Contact != nil && *u.Contact == contactEvent(client.ContactAccepted, tc.other):
				event = true
			case u.Presence != nil && u.Presence.Username == tc.other && u.Presence.Online && u.Presence.HasDevice(tc.id):
				presence = true
			default:
				t.Errorf("%s's session: got %s, want contact event accepted %s and its presence", tc.s.Username, describe(u), tc.other)
			}
		}
	}
	for _, tc := range []struct {
		c     *client.Client
		other string
	}{{alice, "bob"}, {bob, "alice"}} {
		book := bookOf(ctx, t, tc.c)
		if len(book.Accepted) != 1 || book.Accepted[0].Username != tc.other || !book.Accepted[0].Online {
			t.Errorf("contacts: got %v, want %s online", presenceNames(book.Accepted), tc.other)
		}
		if len(book.Incoming)+len(book.Outgoing) != 0 {
			t.Errorf("requests after accepting: got incoming %v outgoing %v, want none", book.Incoming, book.Outgoing)
		}
	}

	if _, err := alice.RequestContact(ctx, "dave"); err != nil {
		t.Fatalf("RequestContact(dave): %v", err)
	}
	tests := []struct {
		name     string
		by       *client.Client
		username string
		want     error
	}{
		{"no request", carol, "alice", rendezvous.ErrNotFound},
		{"own request", alice, "dave", rendezvous.ErrNotFound},
		{"unknown user", alice, "nobody", rendezvous.ErrNotFound},
		{"already contacts", bob, "alice", rendezvous.ErrNotFound},
		{"yourself", alice, "alice", rendezvous.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.by.AcceptContact(ctx, tt.username); !errors.Is(err, tt.want) {
				t.Errorf("AcceptContact(%s): got %v, want %v", tt.username, err, tt.want)
			}
		})
	}
	// Dave can still accept alice's request.
	if err := dave.AcceptContact(ctx, "alice"); err != nil {
		t.Errorf("dave AcceptContact(alice): %v", err)
	}
}

func TestContactDecline(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")
	aliceS := login(ctx, t, alice, nil)
	bobS := login(ctx, t, bob, nil)

	if _, err := alice.RequestContact(ctx, "bob"); err != nil {
		t.Fatalf("RequestContact(bob): %v", err)
	}
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactRequested, "alice"), nil)
	if err := bob.DeclineContact(ctx, "alice"); err != nil {
		t.Fatalf("DeclineContact(alice): %v", err)
	}
	// Bob's devices drop the request.
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactRemoved, "alice"), nil)
	if got := bookOf(ctx, t, bob).Incoming; len(got) != 0 {
		t.Errorf("bob's incoming after declining: got %v, want none", got)
	}
	// Alice is not told.
	awaitContactEvent(ctx, t, aliceS, poke(ctx, t, ts, "alice"), about("bob"))

	if err := bob.DeclineContact(ctx, "alice"); !errors.Is(err, rendezvous.ErrNotFound) {
		t.Errorf("second DeclineContact(alice): got %v, want ErrNotFound", err)
	}
	if err := bob.DeclineContact(ctx, "nobody"); !errors.Is(err, rendezvous.ErrNotFound) {
		t.Errorf("DeclineContact(nobody): got %v, want ErrNotFound", err)
	}
	// Alice may ask again.
	if _, err := alice.RequestContact(ctx, "bob"); err != nil {
		t.Fatalf("RequestContact(bob) again: %v", err)
	}
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactRequested, "alice"), nil)
}

func TestContactRemove(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")
	carol := register(ctx, t, ts, "carol", "password1") // everyone's contact: the witness
	dave := register(ctx, t, ts, "dave", "password1")
	makeContacts(ctx, t, alice, bob, "bob", "alice")
	makeContacts(ctx, t, alice, carol, "carol", "alice")
	makeContacts(ctx, t, bob, carol, "carol", "bob")
	aliceS := login(ctx, t, alice, nil)
	bobS := login(ctx, t, bob, nil)
	carolS := login(ctx, t, carol, nil)
	awaitOnline(ctx, t, aliceS, "bob", "carol")
	awaitOnline(ctx, t, bobS, "carol")

	if err := alice.RemoveContact(ctx, "bob"); err != nil {
		t.Fatalf("RemoveContact(bob): %v", err)
	}
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactRemoved, "alice"), nil)
	awaitContactEvent(ctx, t, aliceS, contactEvent(client.ContactRemoved, "bob"), nil)
	for _, tc := range []struct {
		c    *client.Client
		name string
	}{{alice, "alice"}, {bob, "bob"}} {
		if got, want := presenceNames(bookOf(ctx, t, tc.c).Accepted), []string{"carol"}; !slices.Equal(got, want) {
			t.Errorf("%s's contacts: got %v, want %v", tc.name, got, want)
		}
	}

	// Neither sees the other's presence any more; carol sees both.
	for _, tc := range []struct {
		changer, watcher string
		s, ws            *client.Session
		addrs            []ma.Multiaddr
	}{
		{"bob", "alice", bobS, aliceS, mustAddrs(t, "/ip4/192.0.2.2/tcp/4002")},
		{"alice", "bob", aliceS, bobS, mustAddrs(t, "/ip4/192.0.2.1/tcp/4001")},
	} {
		if err := tc.s.UpdateAddrs(tc.addrs); err != nil {
			t.Fatalf("%s UpdateAddrs: %v", tc.changer, err)
		}
		awaitPresence(ctx, t, carolS, tc.changer, "with new addresses", func(p client.Presence) bool { return addrsEqual(p.Addrs, tc.addrs) })
		awaitContactEvent(ctx, t, tc.ws, poke(ctx, t, ts, tc.watcher), about(tc.changer))
	}

	for _, username := range []string{"bob", "nobody"} {
		if err := alice.RemoveContact(ctx, username); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("RemoveContact(%s) of a non-contact: got %v, want ErrNotFound", username, err)
		}
	}

	// Removing also withdraws a request.
	if _, err := alice.RequestContact(ctx, "dave"); err != nil {
		t.Fatalf("RequestContact(dave): %v", err)
	}
	if err := alice.RemoveContact(ctx, "dave"); err != nil {
		t.Fatalf("RemoveContact(dave) to withdraw a request: %v", err)
	}
	if got := bookOf(ctx, t, alice).Outgoing; len(got) != 0 {
		t.Errorf("alice's outgoing after withdrawing: got %v, want none", got)
	}
	if s := login(ctx, t, dave, nil); len(s.Incoming) != 0 {
		t.Errorf("dave's login after alice withdrew: got incoming %v, want none", s.Incoming)
	}
}

func TestContactBlock(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1") // blocks bob
	bob := register(ctx, t, ts, "bob", "password1")
	carol := register(ctx, t, ts, "carol", "password1") // alice's contact: the witness
	dave := register(ctx, t, ts, "dave", "password1")   // asks alice, then is blocked
	makeContacts(ctx, t, alice, bob, "bob", "alice")
	makeContacts(ctx, t, alice, carol, "carol", "alice")
	if _, err := dave.RequestContact(ctx, "alice"); err != nil {
		t.Fatalf("RequestContact(alice): %v", err)
	}
	aliceS := login(ctx, t, alice, nil)
	bobS := login(ctx, t, bob, nil)
	carolS := login(ctx, t, carol, nil)
	daveS := login(ctx, t, dave, nil)
	awaitOnline(ctx, t, aliceS, "bob", "carol")

	if err := alice.Block(ctx, "bob"); err != nil {
		t.Fatalf("Block(bob): %v", err)
	}
	// Bob learns only what a removal would tell him.
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactRemoved, "alice"), nil)
	awaitContactEvent(ctx, t, aliceS, contactEvent(client.ContactRemoved, "bob"), nil)
	// Blocking one who asked drops the request, without telling them.
	if err := alice.Block(ctx, "dave"); err != nil {
		t.Fatalf("Block(dave): %v", err)
	}
	awaitContactEvent(ctx, t, aliceS, contactEvent(client.ContactRemoved, "dave"), nil)
	awaitContactEvent(ctx, t, daveS, poke(ctx, t, ts, "dave"), about("alice"))

	book := bookOf(ctx, t, alice)
	if got, want := presenceNames(book.Accepted), []string{"carol"}; !slices.Equal(got, want) {
		t.Errorf("alice's contacts: got %v, want %v", got, want)
	}
	if got, want := book.Blocked, []string{"bob", "dave"}; !slices.Equal(got, want) {
		t.Errorf("alice's blocked: got %v, want %v", got, want)
	}
	if len(book.Incoming) != 0 {
		t.Errorf("alice's incoming: got %v, want none", book.Incoming)
	}
	if got := bookOf(ctx, t, bob).Accepted; len(got) != 0 {
		t.Errorf("bob's contacts: got %v, want none", presenceNames(got))
	}

	// Bob's requests are answered as any other, and go nowhere.
	for _, username := range []string{"alice", "nobody", "carol"} {
		if acc, err := bob.RequestContact(ctx, username); err != nil || acc {
			t.Errorf("bob RequestContact(%s): got %v, %v, want false, nil", username, acc, err)
		}
	}
	barrier := poke(ctx, t, ts, "alice")
	awaitContactEvent(ctx, t, aliceS, barrier, about("bob"))
	if got, want := bookOf(ctx, t, alice).Incoming, []string{barrier.Username}; !slices.Equal(got, want) {
		t.Errorf("alice's incoming after bob's request: got %v, want %v", got, want)
	}

	// Bob does not see alice's presence; carol does.
	addrs := mustAddrs(t, "/ip4/192.0.2.1/tcp/4001")
	if err := aliceS.UpdateAddrs(addrs); err != nil {
		t.Fatalf("alice UpdateAddrs: %v", err)
	}
	awaitPresence(ctx, t, carolS, "alice", "with new addresses", func(p client.Presence) bool { return addrsEqual(p.Addrs, addrs) })
	awaitContactEvent(ctx, t, bobS, poke(ctx, t, ts, "bob"), about("alice"))

	// Blocking twice is a no-op; unknown users are not found.
	if err := alice.Block(ctx, "bob"); err != nil {
		t.Errorf("second Block(bob): got %v, want nil", err)
	}
	if err := alice.Block(ctx, "nobody"); !errors.Is(err, rendezvous.ErrNotFound) {
		t.Errorf("Block(nobody): got %v, want ErrNotFound", err)
	}

	if err := alice.Unblock(ctx, "bob"); err != nil {
		t.Fatalf("Unblock(bob): %v", err)
	}
	for _, username := range []string{"bob", "carol", "nobody"} {
		if err := alice.Unblock(ctx, username); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("Unblock(%s) of a user not blocked: got %v, want ErrNotFound", username, err)
		}
	}
	if got, want := bookOf(ctx, t, alice).Blocked, []string{"dave"}; !slices.Equal(got, want) {
		t.Errorf("alice's blocked after unblocking bob: got %v, want %v", got, want)
	}
	// Unblocked, bob's requests arrive again.
	if acc, err := bob.RequestContact(ctx, "alice"); err != nil || acc {
		t.Fatalf("bob RequestContact(alice) after unblock: got %v, %v, want false, nil", acc, err)
	}
	awaitContactEvent(ctx, t, aliceS, contactEvent(client.ContactRequested, "bob"), nil)
	if err := alice.AcceptContact(ctx, "bob"); err != nil {
		t.Fatalf("AcceptContact(bob): %v", err)
	}
	awaitContactEvent(ctx, t, bobS, contactEvent(client.ContactAccepted, "alice"), nil)
}

func TestContactYourself(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")

	ops := []struct {
		name string
		op   func(string) error
	}{
		{"RequestContact", func(u string) error { _, err := alice.RequestContact(ctx, u); return err }},
		{"AcceptContact", func(u string) error { return alice.AcceptContact(ctx, u) }},
		{"DeclineContact", func(u string) error { return alice.DeclineContact(ctx, u) }},
		{"RemoveContact", func(u string) error { return alice.RemoveContact(ctx, u) }},
		{"Block", func(u string) error { return alice.Block(ctx, u) }},
		{"Unblock", func(u string) error { return alice.Unblock(ctx, u) }},
	}
	for _, op := range ops {
		for _, username := range []string{"alice", "ALICE"} {
			t.Run(op.name+"/"+username, func(t *testing.T) {
				if err := op.op(username); !errors.Is(err, rendezvous.ErrBadRequest) {
					t.Errorf("%s(%s) by alice: got %v, want ErrBadRequest", op.name, username, err)
				}
			})
		}
	}
	book := bookOf(ctx, t, alice)
	if n := len(book.Accepted) + len(book.Incoming) + len(book.Outgoing) + len(book.Blocked); n != 0 {
		t.Errorf("alice's contact book: got %+v, want empty", book)
	}
}

func TestContactLists(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	users := map[string]*client.Client{}
	ids := map[string]peer.ID{}
	for _, name := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina"} {
		users[name], ids[name] = registerDevice(ctx, t, ts, name, "password1")
	}
	alice := users["alice"]
	makeContacts(ctx, t, alice, users["bob"], "bob", "alice")
	makeContacts(ctx, t, users["carol"], alice, "alice", "carol")
	for _, req := range [][2]string{{"dave", "alice"}, {"alice", "erin"}, {"gina", "alice"}, {"alice", "gina"}, {"frank", "alice"}} {
		if _, err := users[req[0]].RequestContact(ctx, req[1]); err != nil {
			t.Fatalf("%s RequestContact(%s): %v", req[0], req[1], err)
		}
	}
	if err := alice.Block(ctx, "frank"); err != nil {
		t.Fatalf("Block(frank): %v", err)
	}
	login(ctx, t, users["bob"], nil)

	type lists struct {
		accepted, online, incoming, outgoing, blocked []string
	}
	get := func(c *client.Client) lists {
		book := bookOf(ctx, t, c)
		l := lists{accepted: presenceNames(book.Accepted), incoming: book.Incoming, outgoing: book.Outgoing, blocked: book.Blocked}
		for _, p := range book.Accepted {
			if p.Online {
				l.online = append(l.online, p.Username)
			}
		}
		return l
	}
	tests := []struct {
		user string
		want lists
	}{
		// gina asked alice and alice asked gina: they are contacts.
		{"alice", lists{accepted: []string{"bob", "carol", "gina"}, online: []string{"bob"}, outgoing: []string{"erin"}, incoming: []string{"dave"}, blocked: []string{"frank"}}},
		{"bob", lists{accepted: []string{"alice"}}},
		{"dave", lists{outgoing: []string{"alice"}}},
		{"erin", lists{incoming: []string{"alice"}}},
		{"frank", lists{}},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			got := get(users[tt.user])
			for _, f := range []struct {
				name      string
				got, want []string
			}{
				{"accepted", got.accepted, tt.want.accepted},
				{"online", got.online, tt.want.online},
				{"incoming", got.incoming, tt.want.incoming},
				{"outgoing", got.outgoing, tt.want.outgoing},
				{"blocked", got.blocked, tt.want.blocked},
			} {
				if !slices.Equal(f.got, f.want) {
					t.Errorf("%s's %s: got %v, want %v", tt.user, f.name, f.got, f.want)
				}
			}
		})
	}
	book := bookOf(ctx, t, alice)
	if p := book.Accepted[0]; !p.HasDevice(ids["bob"]) || p.Peer != ids["bob"] {
		t.Errorf("alice's view of bob: got peer %s devices %v, want %s", p.Peer, deviceIDs(p), ids["bob"])
	}
	if p := book.Accepted[1]; p.Peer != "" || len(p.Devices) != 0 || !p.LastSeen.IsZero() {
		t.Errorf("alice's view of carol, never logged in: got peer %q devices %v last seen %v, want none", p.Peer, deviceIDs(p), p.LastSeen)
	}
}

func TestPresenceOnlyToAcceptedContacts(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")     // contact
	carol := register(ctx, t, ts, "carol", "password1") // asked alice
	dave := register(ctx, t, ts, "dave", "password1")   // alice asked dave
	erin := register(ctx, t, ts, "erin", "password1")   // unrelated
	zed := register(ctx, t, ts, "zed", "password1")     // contact, sorts last: the witness
	makeContacts(ctx, t, alice, bob, "bob", "alice")
	makeContacts(ctx, t, alice, zed, "zed", "alice")
	if _, err := carol.RequestContact(ctx, "alice"); err != nil {
		t.Fatalf("RequestContact: %v", err)
	}
	if _, err := alice.RequestContact(ctx, "dave"); err != nil {
		t.Fatalf("RequestContact: %v", err)
	}
	sessions := map[string]*client.Session{}
	for name, c := range map[string]*client.Client{"bob": bob, "carol": carol, "dave": dave, "erin": erin, "zed": zed} {
		sessions[name] = login(ctx, t, c, nil)
	}

	aliceS := login(ctx, t, alice, nil)
	for _, step := range []struct {
		what   string
		change func() error
		ok     func(client.Presence) bool
	}{
		{"login", func() error { return nil }, func(p client.Presence) bool { return p.Online }},
		{"address update", func() error { return aliceS.UpdateAddrs(mustAddrs(t, "/ip4/192.0.2.1/tcp/4001")) },
			func(p client.Presence) bool { return len(p.Addrs) == 1 }},
		{"logout", aliceS.Close, func(p client.Presence) bool { return !p.Online }},
	} {
		if err := step.change(); err != nil {
			t.Fatalf("alice's %s: %v", step.what, err)
		}
		for _, name := range []string{"bob", "zed"} {
			awaitPresence(ctx, t, sessions[name], "alice", "after her "+step.what, step.ok)
		}
		// (Not about("alice"): dave may get alice's request, made
		// before he logged in, if its event was handled after that.)
		for _, name := range []string{"carol", "dave", "erin"} {
			awaitContactEvent(ctx, t, sessions[name], poke(ctx, t, ts, name), presenceOf("alice"))
		}
	}
}

func TestPresenceTwoDevices(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	d1, id1 := registerDevice(ctx, t, ts, "alice", "password1")
	d2, n2 := newClient(t, ts)
	if _, err := d2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	id2 := n2.ID()
	bob := register(ctx, t, ts, "bob", "password1")
	makeContacts(ctx, t, d1, bob, "bob", "alice")
	bobS := login(ctx, t, bob, nil)

	addrs1 := mustAddrs(t, "/ip4/192.0.2.1/tcp/4001")
	addrs2 := mustAddrs(t, "/ip4/192.0.2.2/tcp/4002")
	s1 := login(ctx, t, d1, addrs1)
	awaitPresence(ctx, t, bobS, "alice", "online", func(p client.Presence) bool { return p.Online })
	s2 := login(ctx, t, d2, addrs2)
	p := awaitPresence(ctx, t, bobS, "alice", "with two devices", func(p client.Presence) bool { return len(p.Devices) == 2 })
	if got, want := deviceIDs(p), []peer.ID{id1, id2}; !slices.Equal(got, want) {
		t.Errorf("alice's devices: got %v, want %v (oldest login first)", got, want)
	}
	for i, want := range [][]ma.Multiaddr{addrs1, addrs2} {
		if !addrsEqual(p.Devices[i].Addrs, want) {
			t.Errorf("alice's device %d: got addrs %v, want %v", i+1, p.Devices[i].Addrs, want)
		}
	}
	if p.Peer != id2 || !addrsEqual(p.Addrs, addrs2) {
		t.Errorf("alice's latest device: got %s %v, want %s %v", p.Peer, p.Addrs, id2, addrs2)
	}
	if got := bookOf(ctx, t, bob).Accepted; len(got) != 1 || len(got[0].Devices) != 2 {
		t.Errorf("bob's contact book: got %+v, want alice with two devices", got)
	}

	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	p = awaitPresence(ctx, t, bobS, "alice", "with one device", func(p client.Presence) bool { return len(p.Devices) < 2 })
	if got, want := deviceIDs(p), []peer.ID{id2}; !p.Online || !slices.Equal(got, want) || p.Peer != id2 {
		t.Errorf("alice after her first device logged out: got online=%v peer %s devices %v, want online, %s, %v", p.Online, p.Peer, got, id2, want)
	}
	if err := s2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	p = awaitPresence(ctx, t, bobS, "alice", "offline", func(p client.Presence) bool { return len(p.Devices) == 0 })
	if p.Online || p.Peer != "" || p.LastSeen.IsZero() {
		t.Errorf("alice after both logged out: got online=%v peer %q last seen %v, want offline with a last-seen time", p.Online, p.Peer, p.LastSeen)
	}
}

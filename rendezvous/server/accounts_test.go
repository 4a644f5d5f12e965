package server_test

import (
	"errors"
	"fmt"
	"github.com/parleynet/parley/internal/tstest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
)

func TestChangePassword(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	alice := register(ctx, t, ts, "alice", "password1")

	outsider, _ := newClient(t, ts)
	if err := outsider.ChangePassword(ctx, "password1", "password2"); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
		t.Errorf("ChangePassword from an un-enrolled device: got %v, want ErrDeviceNotEnrolled", err)
	}

	tests := []struct {
		name     string
		old, new string
		want     error
	}{
		{"wrong old password", "password2", "password3", rendezvous.ErrBadCredentials},
		{"wrong old password and new too short", "password2", "short", rendezvous.ErrBadCredentials},
		{"new too short", "password1", "short", rendezvous.ErrBadRequest},
		{"new too long", "password1", strings.Repeat("x", rendezvous.MaxPasswordLen+1), rendezvous.ErrBadRequest},
		{"new empty", "password1", "", rendezvous.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := alice.ChangePassword(ctx, tt.old, tt.new)
			if !errors.Is(err, tt.want) {
				t.Errorf("ChangePassword(%q, %q): got %v, want %v", tt.old, tt.new, err, tt.want)
			}
		})
	}

	// The refused changes changed nothing.
	dev2, _ := newClient(t, ts)
	if _, err := dev2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol with the password after refused changes: got %v, want nil", err)
	}

	if err := alice.ChangePassword(ctx, "password1", "new password"); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	for _, tt := range []struct {
		password string
		want     error
	}{
		{"new password", nil},
		{"password1", rendezvous.ErrBadCredentials},
	} {
		dev, _ := newClient(t, ts)
		if _, err := dev.Enrol(ctx, "alice", tt.password); !errors.Is(err, tt.want) {
			t.Errorf("Enrol with %q after the change: got %v, want %v", tt.password, err, tt.want)
		}
	}
	// Devices enrolled before stay enrolled, and any of them may change
	// the password.
	login(ctx, t, dev2, nil)
	if err := dev2.ChangePassword(ctx, "new password", "newer password"); err != nil {
		t.Errorf("ChangePassword from the second device: %v", err)
	}
}

func TestDeleteAccount(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)

	alice1, alice1ID := registerDevice(ctx, t, ts, "alice", "password1")
	alice2, alice2Node := newClient(t, ts)
	if _, err := alice2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	bob := register(ctx, t, ts, "bob", "password1")     // accepted contact
	carol := register(ctx, t, ts, "carol", "password1") // alice asked her
	dave := register(ctx, t, ts, "dave", "password1")   // asked alice
	makeContacts(ctx, t, alice1, bob, "bob", "alice")
	if _, err := alice1.RequestContact(ctx, "carol"); err != nil {
		t.Fatalf("RequestContact(carol): %v", err)
	}
	if _, err := dave.RequestContact(ctx, "alice"); err != nil {
		t.Fatalf("RequestContact(alice): %v", err)
	}
	bobS := login(ctx, t, bob, nil)
	carolS := login(ctx, t, carol, nil)
	a1 := login(ctx, t, alice1, nil)
	a2 := login(ctx, t, alice2, nil)
	awaitPresence(ctx, t, bobS, "alice", "online with two devices", func(p client.Presence) bool { return len(p.Devices) == 2 })

	if err := alice1.DeleteAccount(ctx, "password2"); !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Fatalf("DeleteAccount with a wrong password: got %v, want ErrBadCredentials", err)
	}
	outsider, _ := newClient(t, ts)
	if err := outsider.DeleteAccount(ctx, "password1"); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
		t.Errorf("DeleteAccount from an un-enrolled device: got %v, want ErrDeviceNotEnrolled", err)
	}
	for _, s := range []*client.Session{a1, a2} {
		if err := s.Err(); err != nil {
			t.Fatalf("alice's session after a refused deletion: got %v, want alive", err)
		}
	}

	if err := alice2.DeleteAccount(ctx, "password1"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}

	// Every session of the account ends, saying why.
	for i, s := range []*client.Session{a1, a2} {
		err := sessionEnd(ctx, t, s)
		if !errors.Is(err, rendezvous.ErrAccountDeleted) {
			t.Errorf("alice's session %d: got %v, want ErrAccountDeleted", i+1, err)
		}
		if errors.Is(err, rendezvous.ErrBadCredentials) {
			t.Errorf("alice's session %d: got %v, which also matches ErrBadCredentials", i+1, err)
		}
	}
	// Contacts and users alice asked are told.
	for _, s := range []*client.Session{bobS, carolS} {
		awaitContactEvent(ctx, t, s, client.ContactEvent{Change: client.ContactRemoved, Username: "alice"}, nil)
	}
	for _, tc := range []struct {
		name string
		c    *client.Client
		list func(client.ContactBook) []string
	}{
		{"bob's contacts", bob, func(b client.ContactBook) []string { return presenceNames(b.Accepted) }},
		{"carol's incoming", carol, func(b client.ContactBook) []string { return b.Incoming }},
		{"dave's outgoing", dave, func(b client.ContactBook) []string { return b.Outgoing }},
	} {
		book, err := tc.c.Contacts(ctx)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := tc.list(book); len(got) != 0 {
			t.Errorf("%s after alice's deletion: got %v, want none", tc.name, got)
		}
	}

	// The devices are gone with the account.
	for _, tc := range []struct {
		name string
		c    *client.Client
	}{{"first device", alice1}, {"second device", alice2}} {
		if _, err := tc.c.Login(ctx, nil); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
			t.Errorf("Login from alice's %s: got %v, want ErrDeviceNotEnrolled", tc.name, err)
		}
		if _, err := tc.c.Devices(ctx); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
			t.Errorf("Devices from alice's %s: got %v, want ErrDeviceNotEnrolled", tc.name, err)
		}
	}

	// The name is free for someone else, who inherits nothing.
	newAlice, newAliceID := registerDevice(ctx, t, ts, "alice", "password9")
	if newAliceID == alice1ID || newAliceID == alice2Node.ID() {
		t.Fatalf("fresh node reused a peer ID")
	}
	s := login(ctx, t, newAlice, nil)
	if len(s.Contacts) != 0 || len(s.Incoming) != 0 {
		t.Errorf("new alice's login: got contacts %v incoming %v, want none", presenceNames(s.Contacts), s.Incoming)
	}
	book, err := newAlice.Contacts(ctx)
	if err != nil {
		t.Fatalf("new alice Contacts: %v", err)
	}
	if n := len(book.Accepted) + len(book.Incoming) + len(book.Outgoing) + len(book.Blocked); n != 0 {
		t.Errorf("new alice's contact book: got %+v, want empty", book)
	}
	devs, err := newAlice.Devices(ctx)
	if err != nil {
		t.Fatalf("new alice Devices: %v", err)
	}
	if len(devs) != 1 || devs[0].Peer != newAliceID {
		t.Errorf("new alice's devices: got %+v, want only %s", devs, newAliceID)
	}
	// The old password does not open the new account.
	if _, err := alice1.Enrol(ctx, "alice", "password1"); !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Errorf("Enrol to the new alice with the old password: got %v, want ErrBadCredentials", err)
	}
	// A device of the deleted account is free to register again.
	if _, err := alice1.Register(ctx, "alice2", "password1"); err != nil {
		t.Errorf("Register from a device of the deleted account: got %v, want nil", err)
	}
}

func presenceNames(ps []client.Presence) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Username)
	}
	return out
}

// deviceState is what a device listing says about one device.
type deviceState struct {
	Peer            peer.ID
	Online, Revoked bool
}

func (d deviceState) String() string {
	return fmt.Sprintf("%s online=%v revoked=%v", d.Peer.ShortString(), d.Online, d.Revoked)
}

func TestDevices(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)
	start := time.Now()

	d1, id1 := registerDevice(ctx, t, ts, "alice", "password1")
	d2, n2 := newClient(t, ts)
	if _, err := d2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	id2 := n2.ID()
	register(ctx, t, ts, "bob", "password1") // not listed

	devs, err := d2.Devices(ctx)
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	if len(devs) != 2 {
		t.Fatalf("Devices: got %d, want 2", len(devs))
	}
	for _, d := range devs {
		if lo, hi := start.Add(-time.Second), time.Now().Add(time.Second); d.Enrolled.Before(lo) || d.Enrolled.After(hi) {
			t.Errorf("device %s: got enrolled %v, want between %v and %v", d.Peer, d.Enrolled, lo, hi)
		}
	}

	// expect waits until every device lists the devices as want says.
	expect := func(what string, want ...deviceState) {
		t.Helper()
		err := tstest.Poll(ctx, func() error {
			devs, err := d1.Devices(ctx)
			if err != nil {
				return fmt.Errorf("%s: Devices: %w", what, err)
			}
			got := make([]deviceState, 0, len(devs))
			for _, d := range devs {
				got = append(got, deviceState{d.Peer, d.Online, !d.Revoked.IsZero()})
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s: got devices %v, want %v", what, got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	expect("no sessions", deviceState{id1, false, false}, deviceState{id2, false, false})
	s1 := login(ctx, t, d1, nil)
	expect("first logged in", deviceState{id1, true, false}, deviceState{id2, false, false})
	login(ctx, t, d2, nil)
	expect("both logged in", deviceState{id1, true, false}, deviceState{id2, true, false})
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expect("first logged out", deviceState{id1, false, false}, deviceState{id2, true, false})

	before := time.Now()
	if err := d1.RevokeDevice(ctx, id2); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	after := time.Now()
	expect("second revoked", deviceState{id1, false, false}, deviceState{id2, false, true})
	devs, err = d1.Devices(ctx)
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	if r := devs[1].Revoked; r.Before(before.Add(-time.Second)) || r.After(after.Add(time.Second)) {
		t.Errorf("revoked device: got revoked at %v, want between %v and %v", r, before, after)
	}

	if _, err := d2.Devices(ctx); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("Devices from the revoked device: got %v, want ErrDeviceRevoked", err)
	}
	outsider, _ := newClient(t, ts)
	if _, err := outsider.Devices(ctx); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
		t.Errorf("Devices from an un-enrolled device: got %v, want ErrDeviceNotEnrolled", err)
	}
}

func TestRevokeDevice(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)

	d1, id1 := registerDevice(ctx, t, ts, "alice", "password1")
	d2, n2 := newClient(t, ts)
	if _, err := d2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	id2 := n2.ID()
	bob, bobID := registerDevice(ctx, t, ts, "bob", "password1")
	makeContacts(ctx, t, d1, bob, "bob", "alice")
	bobS := login(ctx, t, bob, nil)
	s1 := login(ctx, t, d1, nil)
	s2 := login(ctx, t, d2, nil)
	awaitPresence(ctx, t, bobS, "alice", "online with two devices", func(p client.Presence) bool { return len(p.Devices) == 2 })

	// Only one's own devices can be revoked.
	for _, tc := range []struct {
		name string
		by   *client.Client
		dev  peer.ID
	}{
		{"bob's device by alice", d1, bobID},
		{"alice's device by bob", bob, id1},
		{"an unknown device", d1, nodetest.PeerID(t)},
	} {
		if err := tc.by.RevokeDevice(ctx, tc.dev); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("RevokeDevice(%s): got %v, want ErrNotFound", tc.name, err)
		}
	}
	for _, s := range []*client.Session{bobS, s1, s2} {
		if err := s.Err(); err != nil {
			t.Fatalf("%s's session after refused revocations: got %v, want alive", s.Username, err)
		}
	}

	if err := d1.RevokeDevice(ctx, id2); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	err := sessionEnd(ctx, t, s2)
	if !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("revoked device's session: got %v, want ErrDeviceRevoked", err)
	}
	if se := statusErr(t, err); se.Status != pb.Status_STATUS_PERMISSION_DENIED {
		t.Errorf("revoked device's session: got status %v, want %v", se.Status, pb.Status_STATUS_PERMISSION_DENIED)
	}
	p := awaitPresence(ctx, t, bobS, "alice", "without the revoked device", func(p client.Presence) bool { return !p.HasDevice(id2) })
	if got, want := deviceIDs(p), []peer.ID{id1}; !p.Online || !slices.Equal(got, want) || p.Peer != id1 {
		t.Errorf("bob's view of alice after the revocation: got online=%v peer=%s devices %v, want online, %s, %v", p.Online, p.Peer, got, id1, want)
	}
	if err := s1.Err(); err != nil {
		t.Errorf("alice's other session: got %v, want alive", err)
	}

	// The revoked device is refused for good, password or not.
	if _, err := d2.Login(ctx, nil); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("Login from the revoked device: got %v, want ErrDeviceRevoked", err)
	}
	if _, err := d2.Enrol(ctx, "alice", "password1"); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("Enrol of the revoked device with the password: got %v, want ErrDeviceRevoked", err)
	}
	if _, err := d2.Register(ctx, "alice2", "password1"); !errors.Is(err, rendezvous.ErrDeviceTaken) {
		t.Errorf("Register from the revoked device: got %v, want ErrDeviceTaken", err)
	}
	if _, err := d2.RequestContact(ctx, "bob"); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("RequestContact from the revoked device: got %v, want ErrDeviceRevoked", err)
	}
	// Revoking twice is a no-op.
	if err := d1.RevokeDevice(ctx, id2); err != nil {
		t.Errorf("second RevokeDevice: got %v, want nil", err)
	}
	// A device may revoke itself.
	if err := d1.RevokeDevice(ctx, id1); err != nil {
		t.Fatalf("RevokeDevice(self): %v", err)
	}
	if err := sessionEnd(ctx, t, s1); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("self-revoked device's session: got %v, want ErrDeviceRevoked", err)
	}
	awaitPresence(ctx, t, bobS, "alice", "offline", func(p client.Presence) bool { return !p.Online })
}

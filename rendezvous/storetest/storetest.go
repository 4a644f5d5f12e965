// Package storetest is the conformance suite for server.Store
// implementations. Each implementation's tests call Run with a constructor
// for fresh, empty stores; implementations where several Store values can
// share one database also call RunShared.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
)

// eventTimeout bounds the wait for a published event or a closing channel.
const eventTimeout = 10 * time.Second

// base is an arbitrary instant on a millisecond boundary, so that every
// backend stores the times derived from it exactly.
var base = time.UnixMilli(1_750_000_000_000)

// Run runs the suite. newStore must return a new, empty store for each
// subtest; Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) server.Store) {
	open := func(t *testing.T) server.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("Users", func(t *testing.T) { runUsers(t, open) })
	t.Run("Devices", func(t *testing.T) { runDevices(t, open) })
	t.Run("Contacts", func(t *testing.T) { runContacts(t, open) })
	t.Run("Sessions", func(t *testing.T) { runSessions(t, open) })
	t.Run("Bus", func(t *testing.T) { runBus(t, open, newStore) })
	t.Run("Mailbox", func(t *testing.T) { runMailbox(t, open) })
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Errorf("Ping: got %v, want nil", err)
		}
	})
}

// RunShared runs the checks for backends where several Store values share
// one database (several rendezvous replicas). open must return two stores
// on the same new, empty database; RunShared closes them.
func RunShared(t *testing.T, open func(t *testing.T) (a, b server.Store)) {
	pair := func(t *testing.T) (a, b server.Store) {
		t.Helper()
		a, b = open(t)
		t.Cleanup(func() {
			for _, s := range []server.Store{a, b} {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}
		})
		return a, b
	}

	t.Run("EventsReachEveryStore", func(t *testing.T) {
		a, b := pair(t)
		subA := subscribe(t, a)
		subB := subscribe(t, b)
		dev := test.RandPeerIDFatal(t)
		fromA := server.Event{Kind: server.EventKick, UserID: 7, Device: dev, At: base.UnixMicro()}
		if err := a.Publish(t.Context(), fromA); err != nil {
			t.Fatalf("a.Publish: %v", err)
		}
		expectEvents(t, "a's subscriber", subA, fromA)
		expectEvents(t, "b's subscriber", subB, fromA)

		fromB := server.Event{Kind: server.EventContact, UserID: 8, Other: "alice", Change: server.ContactAccepted}
		if err := b.Publish(t.Context(), fromB); err != nil {
			t.Fatalf("b.Publish: %v", err)
		}
		expectEvents(t, "a's subscriber", subA, fromB)
		expectEvents(t, "b's subscriber", subB, fromB)

		// A burst from one store arrives in order on the other.
		burst := manyEvents(t, 50)
		for _, ev := range burst {
			if err := a.Publish(t.Context(), ev); err != nil {
				t.Fatalf("a.Publish: %v", err)
			}
		}
		expectEvents(t, "b's subscriber", subB, burst...)
		expectEvents(t, "a's subscriber", subA, burst...)
	})

	t.Run("StateIsShared", func(t *testing.T) {
		a, b := pair(t)
		ctx := t.Context()
		alice, dev := register(t, a, "alice")
		got, err := b.UserByName(ctx, "alice")
		if err != nil {
			t.Fatalf("b.UserByName: %v", err)
		}
		checkUser(t, "b.UserByName", got, alice)
		bob, _ := register(t, b, "bob")
		request(t, a, alice, bob, server.Requested)
		checkBook(t, b, bob, book{Incoming: []string{"alice"}})

		heartbeat(t, a, "r1", base)
		sess := server.SessionRecord{Device: dev, UserID: alice.ID, Replica: "r1",
			Addrs: [][]byte{[]byte("addr")}, Started: base}
		if err := a.PutSession(ctx, sess); err != nil {
			t.Fatalf("a.PutSession: %v", err)
		}
		checkSessions(t, b, base.Add(-time.Second), []int64{alice.ID}, sess)
		users, err := b.ReapReplicas(ctx, base.Add(time.Second))
		if err != nil {
			t.Fatalf("b.ReapReplicas: %v", err)
		}
		if !slices.Equal(users, []int64{alice.ID}) {
			t.Errorf("b.ReapReplicas: got users %v, want [%d]", users, alice.ID)
		}
		checkSessions(t, a, time.Time{}, []int64{alice.ID})
	})
}

type opener = func(t *testing.T) server.Store

func runUsers(t *testing.T, open opener) {
	t.Run("RegisterThenLookUp", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		dev := test.RandPeerIDFatal(t)
		hash := []byte("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")
		before := time.Now().Truncate(time.Millisecond)
		u, err := s.Register(ctx, "alice", hash, dev)
		if err != nil {
			t.Fatalf("Register: %v", err)
		}
		after := time.Now()
		if u.ID == 0 || u.Name != "alice" || !bytes.Equal(u.PasswordHash, hash) {
			t.Errorf("Register: got %+v, want non-zero ID, name alice, hash %q", u, hash)
		}
		if u.Created.Before(before) || u.Created.After(after) {
			t.Errorf("Register: got Created %v, want between %v and %v", u.Created, before, after)
		}
		if !u.LastSeen.IsZero() {
			t.Errorf("Register: got LastSeen %v, want zero", u.LastSeen)
		}
		got, err := s.UserByName(ctx, "alice")
		if err != nil {
			t.Fatalf("UserByName: %v", err)
		}
		checkUser(t, "UserByName", got, u)
		got, err = s.UserByID(ctx, u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		checkUser(t, "UserByID", got, u)
		owner, err := s.DeviceOwner(ctx, dev)
		if err != nil {
			t.Fatalf("DeviceOwner: %v", err)
		}
		checkUser(t, "DeviceOwner", owner, u)
		bob, _ := register(t, s, "bob")
		if bob.ID == u.ID {
			t.Errorf("Register(bob): got ID %d, the same as alice's", bob.ID)
		}
	})

	t.Run("DuplicateUsername", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, _ := register(t, s, "alice")
		dev := test.RandPeerIDFatal(t)
		if _, err := s.Register(ctx, "alice", []byte("other"), dev); !errors.Is(err, rendezvous.ErrUsernameTaken) {
			t.Errorf("second Register: got %v, want %v", err, rendezvous.ErrUsernameTaken)
		}
		if _, err := s.DeviceOwner(ctx, dev); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("DeviceOwner of rejected device: got %v, want %v", err, rendezvous.ErrNotFound)
		}
		got, err := s.UserByName(ctx, "alice")
		if err != nil {
			t.Fatalf("UserByName: %v", err)
		}
		checkUser(t, "UserByName after rejected Register", got, alice)
	})

	t.Run("SetPasswordHash", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, _ := register(t, s, "alice")
		bob, _ := register(t, s, "bob")
		hash := []byte("$argon2id$v=19$m=65536,t=3,p=4$bmV3$bmV3")
		if err := s.SetPasswordHash(ctx, alice.ID, hash); err != nil {
			t.Fatalf("SetPasswordHash: %v", err)
		}
		got, err := s.UserByID(ctx, alice.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		if !bytes.Equal(got.PasswordHash, hash) {
			t.Errorf("PasswordHash: got %q, want %q", got.PasswordHash, hash)
		}
		got, err = s.UserByID(ctx, bob.ID)
		if err != nil {
			t.Fatalf("UserByID(bob): %v", err)
		}
		checkUser(t, "bob after alice's SetPasswordHash", got, bob)
	})

	t.Run("SetLastSeen", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, _ := register(t, s, "alice")
		for _, seen := range []time.Time{
			time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC),
			time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		} {
			if err := s.SetLastSeen(ctx, alice.ID, seen); err != nil {
				t.Fatalf("SetLastSeen: %v", err)
			}
			got, err := s.UserByName(ctx, "alice")
			if err != nil {
				t.Fatalf("UserByName: %v", err)
			}
			// Backends may keep less than nanoseconds, but at least
			// milliseconds, and never round up.
			if d := seen.Sub(got.LastSeen); d < 0 || d >= time.Millisecond {
				t.Errorf("LastSeen: got %v, want %v to the millisecond", got.LastSeen, seen)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		alice, dev := register(t, s, "alice")
		bob, _ := register(t, s, "bob")
		ctx := t.Context()
		const unknown = 1 << 40
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"DeviceOwner", func() error {
				_, err := s.DeviceOwner(ctx, test.RandPeerIDFatal(t))
				return err
			}},
			{"UserByName", func() error {
				_, err := s.UserByName(ctx, "nobody")
				return err
			}},
			{"UserByID", func() error {
				_, err := s.UserByID(ctx, unknown)
				return err
			}},
			{"SetPasswordHash", func() error { return s.SetPasswordHash(ctx, unknown, []byte("x")) }},
			{"SetLastSeen", func() error { return s.SetLastSeen(ctx, unknown, time.Now()) }},
			{"DeleteUser", func() error { return s.DeleteUser(ctx, unknown) }},
			{"EnrolDevice unknown user", func() error {
				return s.EnrolDevice(ctx, unknown, test.RandPeerIDFatal(t))
			}},
			{"RevokeDevice unknown device", func() error {
				return s.RevokeDevice(ctx, alice.ID, test.RandPeerIDFatal(t))
			}},
			{"RevokeDevice of another user", func() error { return s.RevokeDevice(ctx, bob.ID, dev) }},
			{"RequestContact unknown to", func() error {
				_, err := s.RequestContact(ctx, alice.ID, unknown)
				return err
			}},
			{"RequestContact unknown from", func() error {
				_, err := s.RequestContact(ctx, unknown, alice.ID)
				return err
			}},
			{"Block unknown", func() error { return s.Block(ctx, alice.ID, unknown) }},
			{"AcceptContact", func() error { return s.AcceptContact(ctx, alice.ID, bob.ID) }},
			{"DeclineContact", func() error { return s.DeclineContact(ctx, alice.ID, bob.ID) }},
			{"RemoveContact", func() error { return s.RemoveContact(ctx, alice.ID, bob.ID) }},
			{"Unblock", func() error { return s.Unblock(ctx, alice.ID, bob.ID) }},
		} {
			if err := tc.call(); !errors.Is(err, rendezvous.ErrNotFound) {
				t.Errorf("%s: got %v, want %v", tc.name, err, rendezvous.ErrNotFound)
			}
		}
		// Nothing was written along the way.
		checkBook(t, s, alice, book{})
		checkBook(t, s, bob, book{})
		checkDevices(t, s, alice, dev)
	})

	t.Run("DeleteUser", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, dev := register(t, s, "alice")
		second := test.RandPeerIDFatal(t)
		if err := s.EnrolDevice(ctx, alice.ID, second); err != nil {
			t.Fatalf("EnrolDevice: %v", err)
		}
		revoked := test.RandPeerIDFatal(t)
		if err := s.EnrolDevice(ctx, alice.ID, revoked); err != nil {
			t.Fatalf("EnrolDevice: %v", err)
		}
		if err := s.RevokeDevice(ctx, alice.ID, revoked); err != nil {
			t.Fatalf("RevokeDevice: %v", err)
		}
		users := map[string]server.User{}
		for _, name := range []string{"bob", "carol", "dave", "erin", "frank"} {
			users[name], _ = register(t, s, name)
		}
		bob, carol, dave, erin, frank := users["bob"], users["carol"], users["dave"], users["erin"], users["frank"]
		request(t, s, alice, bob, server.Requested)
		accept(t, s, bob, alice)
		request(t, s, carol, alice, server.Requested) // incoming to alice
		request(t, s, alice, dave, server.Requested)  // outgoing from alice
		block(t, s, alice, erin)
		block(t, s, frank, alice)
		heartbeat(t, s, "r1", base)
		putSession(t, s, server.SessionRecord{Device: dev, UserID: alice.ID, Replica: "r1", Started: base})
		bobDev := devicesOf(t, s, bob)[0]
		bobSess := server.SessionRecord{Device: bobDev, UserID: bob.ID, Replica: "r1", Started: base.Add(time.Second)}
		putSession(t, s, bobSess)

		if err := s.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		if _, err := s.UserByName(ctx, "alice"); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("UserByName after DeleteUser: got %v, want %v", err, rendezvous.ErrNotFound)
		}
		if _, err := s.UserByID(ctx, alice.ID); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("UserByID after DeleteUser: got %v, want %v", err, rendezvous.ErrNotFound)
		}
		for _, d := range []peer.ID{dev, second, revoked} {
			if _, err := s.DeviceOwner(ctx, d); !errors.Is(err, rendezvous.ErrNotFound) {
				t.Errorf("DeviceOwner(%s) after DeleteUser: got %v, want %v", d, err, rendezvous.ErrNotFound)
			}
		}
		if devs, err := s.Devices(ctx, alice.ID); err != nil || len(devs) != 0 {
			t.Errorf("Devices after DeleteUser: got %v, %v, want none", devs, err)
		}
		checkBook(t, s, bob, book{})
		checkBook(t, s, carol, book{})
		checkBook(t, s, dave, book{})
		checkBook(t, s, erin, book{})
		checkBook(t, s, frank, book{})
		checkSessions(t, s, time.Time{}, []int64{alice.ID, bob.ID}, bobSess)
		if err := s.DeleteUser(ctx, alice.ID); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("second DeleteUser: got %v, want %v", err, rendezvous.ErrNotFound)
		}

		// The name and every device (even the revoked one) are free again.
		again, err := s.Register(ctx, "alice", []byte("new hash"), revoked)
		if err != nil {
			t.Fatalf("Register(alice) again: %v", err)
		}
		if again.ID == alice.ID {
			t.Errorf("Register(alice) again: got the deleted user's ID %d", again.ID)
		}
		if err := s.EnrolDevice(ctx, again.ID, dev); err != nil {
			t.Errorf("EnrolDevice(old device) to the new alice: got %v, want nil", err)
		}
		checkBook(t, s, again, book{})
		checkBook(t, s, frank, book{})
	})

	t.Run("ConcurrentRegisterDistinct", func(t *testing.T) {
		s := open(t)
		const n = 20
		devs := make([]peer.ID, n)
		for i := range devs {
			devs[i] = test.RandPeerIDFatal(t)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.Register(t.Context(), fmt.Sprintf("user%02d", i), []byte("hash"), devs[i])
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Register(user%02d): got %v, want nil", i, err)
				continue
			}
			owner, err := s.DeviceOwner(t.Context(), devs[i])
			if err != nil || owner.Name != fmt.Sprintf("user%02d", i) {
				t.Errorf("DeviceOwner(device %d): got %q, %v, want user%02d", i, owner.Name, err, i)
			}
		}
	})

	t.Run("ConcurrentRegisterSameName", func(t *testing.T) {
		s := open(t)
		const n = 10
		devs := make([]peer.ID, n)
		for i := range devs {
			devs[i] = test.RandPeerIDFatal(t)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.Register(t.Context(), "alice", []byte("hash"), devs[i])
			})
		}
		wg.Wait()
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case errors.Is(err, rendezvous.ErrUsernameTaken):
				if _, err := s.DeviceOwner(t.Context(), devs[i]); !errors.Is(err, rendezvous.ErrNotFound) {
					t.Errorf("DeviceOwner of losing device %d: got %v, want %v", i, err, rendezvous.ErrNotFound)
				}
			default:
				t.Errorf("Register %d: got %v, want nil or %v", i, err, rendezvous.ErrUsernameTaken)
			}
		}
		if winners != 1 {
			t.Errorf("successful Registers: got %d, want 1", winners)
		}
	})
}

func runDevices(t *testing.T, open opener) {
	t.Run("DeviceTaken", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			take    func(t *testing.T, s server.Store, dev peer.ID) error
			bobWant error // UserByName("bob") afterwards
		}{
			{"Register", func(t *testing.T, s server.Store, dev peer.ID) error {
				_, err := s.Register(t.Context(), "bob", []byte("hash"), dev)
				return err
			}, rendezvous.ErrNotFound},
			{"EnrolDevice", func(t *testing.T, s server.Store, dev peer.ID) error {
				bob, _ := register(t, s, "bob")
				return s.EnrolDevice(t.Context(), bob.ID, dev)
			}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := open(t)
				alice, dev := register(t, s, "alice")
				if err := tc.take(t, s, dev); !errors.Is(err, rendezvous.ErrDeviceTaken) {
					t.Errorf("got %v, want %v", err, rendezvous.ErrDeviceTaken)
				}
				owner, err := s.DeviceOwner(t.Context(), dev)
				if err != nil {
					t.Fatalf("DeviceOwner: %v", err)
				}
				if owner.ID != alice.ID {
					t.Errorf("DeviceOwner: got user %d, want %d", owner.ID, alice.ID)
				}
				if _, err := s.UserByName(t.Context(), "bob"); !errors.Is(err, tc.bobWant) {
					t.Errorf("UserByName(bob): got %v, want %v", err, tc.bobWant)
				}
			})
		}
	})

	t.Run("EnrolDeviceIdempotent", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, first := register(t, s, "alice")
		second := test.RandPeerIDFatal(t)
		for _, dev := range []peer.ID{second, second, first} {
			if err := s.EnrolDevice(ctx, alice.ID, dev); err != nil {
				t.Errorf("EnrolDevice(%s): got %v, want nil", dev, err)
			}
		}
		owner, err := s.DeviceOwner(ctx, second)
		if err != nil {
			t.Fatalf("DeviceOwner: %v", err)
		}
		if owner.ID != alice.ID {
			t.Errorf("DeviceOwner: got user %d, want %d", owner.ID, alice.ID)
		}
		checkDevices(t, s, alice, first, second)
	})

	t.Run("DevicesOldestFirst", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		before := time.Now().Truncate(time.Millisecond)
		alice, first := register(t, s, "alice")
		bob, _ := register(t, s, "bob")
		want := []peer.ID{first}
		for range 4 {
			dev := test.RandPeerIDFatal(t)
			if err := s.EnrolDevice(ctx, alice.ID, dev); err != nil {
				t.Fatalf("EnrolDevice: %v", err)
			}
			if err := s.EnrolDevice(ctx, bob.ID, test.RandPeerIDFatal(t)); err != nil {
				t.Fatalf("EnrolDevice(bob): %v", err)
			}
			want = append(want, dev)
		}
		after := time.Now()
		devs := checkDevices(t, s, alice, want...)
		for i, d := range devs {
			if d.Enrolled.Before(before) || d.Enrolled.After(after) {
				t.Errorf("device %d: got Enrolled %v, want between %v and %v", i, d.Enrolled, before, after)
			}
			if i > 0 && d.Enrolled.Before(devs[i-1].Enrolled) {
				t.Errorf("device %d: got Enrolled %v before the previous device's %v", i, d.Enrolled, devs[i-1].Enrolled)
			}
			if !d.Revoked.IsZero() {
				t.Errorf("device %d: got Revoked %v, want zero", i, d.Revoked)
			}
		}
		if devs, err := s.Devices(ctx, bob.ID); err != nil || len(devs) != 5 {
			t.Errorf("Devices(bob): got %d devices, %v, want 5", len(devs), err)
		}
	})

	t.Run("RevokeDevice", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, first := register(t, s, "alice")
		bob, _ := register(t, s, "bob")
		second := test.RandPeerIDFatal(t)
		if err := s.EnrolDevice(ctx, alice.ID, second); err != nil {
			t.Fatalf("EnrolDevice: %v", err)
		}
		heartbeat(t, s, "r1", base)
		heartbeat(t, s, "r2", base)
		firstSess := server.SessionRecord{Device: first, UserID: alice.ID, Replica: "r1", Started: base}
		putSession(t, s, firstSess)
		putSession(t, s, server.SessionRecord{Device: second, UserID: alice.ID, Replica: "r2", Started: base})

		before := time.Now().Truncate(time.Millisecond)
		if err := s.RevokeDevice(ctx, alice.ID, second); err != nil {
			t.Fatalf("RevokeDevice: %v", err)
		}
		after := time.Now()
		if _, err := s.DeviceOwner(ctx, second); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
			t.Errorf("DeviceOwner(revoked): got %v, want %v", err, rendezvous.ErrDeviceRevoked)
		}
		if owner, err := s.DeviceOwner(ctx, first); err != nil || owner.ID != alice.ID {
			t.Errorf("DeviceOwner(other device): got user %d, %v, want %d", owner.ID, err, alice.ID)
		}
		// Its session went; the other device's stayed.
		checkSessions(t, s, time.Time{}, []int64{alice.ID}, firstSess)

		devs := checkDevices(t, s, alice, first, second)
		if !devs[0].Revoked.IsZero() {
			t.Errorf("first device: got Revoked %v, want zero", devs[0].Revoked)
		}
		revokedAt := devs[1].Revoked
		if revokedAt.Before(before) || revokedAt.After(after) {
			t.Errorf("revoked device: got Revoked %v, want between %v and %v", revokedAt, before, after)
		}

		// Revoking twice is a no-op that keeps the first time.
		time.Sleep(2 * time.Millisecond)
		if err := s.RevokeDevice(ctx, alice.ID, second); err != nil {
			t.Errorf("second RevokeDevice: got %v, want nil", err)
		}
		devs = checkDevices(t, s, alice, first, second)
		if !devs[1].Revoked.Equal(revokedAt) {
			t.Errorf("after second RevokeDevice: got Revoked %v, want %v", devs[1].Revoked, revokedAt)
		}

		// A revoked device can never come back.
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{"EnrolDevice by its owner", func() error { return s.EnrolDevice(ctx, alice.ID, second) }, rendezvous.ErrDeviceRevoked},
			{"EnrolDevice by another user", func() error { return s.EnrolDevice(ctx, bob.ID, second) }, rendezvous.ErrDeviceTaken},
			{"Register", func() error {
				_, err := s.Register(ctx, "carol", []byte("hash"), second)
				return err
			}, rendezvous.ErrDeviceTaken},
			{"PutSession", func() error {
				return s.PutSession(ctx, server.SessionRecord{Device: second, UserID: alice.ID, Replica: "r1", Started: base})
			}, rendezvous.ErrDeviceRevoked},
		} {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}
		if _, err := s.UserByName(ctx, "carol"); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("UserByName(carol) after refused Register: got %v, want %v", err, rendezvous.ErrNotFound)
		}
		checkDevices(t, s, alice, first, second)
		checkSessions(t, s, time.Time{}, []int64{alice.ID}, firstSess)
	})
}

// book is a ContactLists by names.
type book struct {
	Accepted, Incoming, Outgoing, Blocked []string
}

// step is one contact operation by user me (a letter: a for alice, b for
// bob) on other.
type step struct {
	op        string // request, accept, decline, remove, block, unblock
	me, other byte
	result    server.RequestResult // for request
	err       error                // what errors.Is must match; nil for success
}

func runContacts(t *testing.T, open opener) {
	t.Run("Transitions", func(t *testing.T) {
		const a, b = 'a', 'b'
		req := func(me, other byte, r server.RequestResult) step {
			return step{op: "request", me: me, other: other, result: r}
		}
		op := func(name string, me, other byte, err error) step {
			return step{op: name, me: me, other: other, err: err}
		}
		contacts := book{Accepted: []string{"bob"}}
		bobContacts := book{Accepted: []string{"alice"}}
		for _, tc := range []struct {
			name       string
			steps      []step
			alice, bob book
		}{
			{"request", []step{req(a, b, server.Requested)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"duplicate request", []step{req(a, b, server.Requested), req(a, b, server.Requested)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"mutual request", []step{req(a, b, server.Requested), req(b, a, server.Accepted)},
				contacts, bobContacts},
			{"accept", []step{req(a, b, server.Requested), op("accept", b, a, nil)},
				contacts, bobContacts},
			{"accept without request", []step{op("accept", b, a, rendezvous.ErrNotFound)},
				book{}, book{}},
			{"accept own request", []step{req(a, b, server.Requested), op("accept", a, b, rendezvous.ErrNotFound)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"accept twice", []step{req(a, b, server.Requested), op("accept", b, a, nil), op("accept", b, a, rendezvous.ErrNotFound)},
				contacts, bobContacts},
			{"request between contacts", []step{req(a, b, server.Requested), op("accept", b, a, nil),
				req(a, b, server.Accepted), req(b, a, server.Accepted)},
				contacts, bobContacts},
			{"decline", []step{req(a, b, server.Requested), op("decline", b, a, nil)},
				book{}, book{}},
			{"request again after decline", []step{req(a, b, server.Requested), op("decline", b, a, nil), req(a, b, server.Requested)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"decline without request", []step{op("decline", b, a, rendezvous.ErrNotFound)},
				book{}, book{}},
			{"decline own request", []step{req(a, b, server.Requested), op("decline", a, b, rendezvous.ErrNotFound)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"decline a contact", []step{req(a, b, server.Requested), op("accept", b, a, nil), op("decline", b, a, rendezvous.ErrNotFound)},
				contacts, bobContacts},
			{"remove contact", []step{req(a, b, server.Requested), op("accept", b, a, nil), op("remove", a, b, nil)},
				book{}, book{}},
			{"remove contact from the other side", []step{req(a, b, server.Requested), op("accept", b, a, nil), op("remove", b, a, nil)},
				book{}, book{}},
			{"remove twice", []step{req(a, b, server.Requested), op("accept", b, a, nil), op("remove", a, b, nil), op("remove", b, a, rendezvous.ErrNotFound)},
				book{}, book{}},
			{"withdraw request", []step{req(a, b, server.Requested), op("remove", a, b, nil)},
				book{}, book{}},
			{"remove incoming request", []step{req(a, b, server.Requested), op("remove", b, a, rendezvous.ErrNotFound)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"remove nothing", []step{op("remove", a, b, rendezvous.ErrNotFound)},
				book{}, book{}},
			{"block contact", []step{req(a, b, server.Requested), op("accept", b, a, nil), op("block", a, b, nil)},
				book{Blocked: []string{"bob"}}, book{}},
			{"block requester", []step{req(a, b, server.Requested), op("block", b, a, nil)},
				book{}, book{Blocked: []string{"alice"}}},
			{"block requested", []step{req(a, b, server.Requested), op("block", a, b, nil)},
				book{Blocked: []string{"bob"}}, book{}},
			{"block twice", []step{op("block", a, b, nil), op("block", a, b, nil)},
				book{Blocked: []string{"bob"}}, book{}},
			{"block each other", []step{op("block", a, b, nil), op("block", b, a, nil)},
				book{Blocked: []string{"bob"}}, book{Blocked: []string{"alice"}}},
			{"block self", []step{op("block", a, a, rendezvous.ErrBadRequest)},
				book{}, book{}},
			{"blocked requester is ignored", []step{op("block", b, a, nil), req(a, b, server.Ignored), req(a, b, server.Ignored)},
				book{}, book{Blocked: []string{"alice"}}},
			{"blocked user cannot accept", []step{req(a, b, server.Requested), op("block", a, b, nil), op("accept", b, a, rendezvous.ErrNotFound)},
				book{Blocked: []string{"bob"}}, book{}},
			{"request lifts own block", []step{op("block", a, b, nil), req(a, b, server.Requested)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"request lifts own block even when blocked back", []step{op("block", a, b, nil), op("block", b, a, nil), req(a, b, server.Ignored)},
				book{}, book{Blocked: []string{"alice"}}},
			{"unblock", []step{op("block", a, b, nil), op("unblock", a, b, nil)},
				book{}, book{}},
			{"request after unblock", []step{op("block", b, a, nil), req(a, b, server.Ignored), op("unblock", b, a, nil), req(a, b, server.Requested)},
				book{Outgoing: []string{"bob"}}, book{Incoming: []string{"alice"}}},
			{"unblock twice", []step{op("block", a, b, nil), op("unblock", a, b, nil), op("unblock", a, b, rendezvous.ErrNotFound)},
				book{}, book{}},
			{"unblock someone else's block", []step{op("block", b, a, nil), op("unblock", a, b, rendezvous.ErrNotFound)},
				book{}, book{Blocked: []string{"alice"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				alice, _ := register(t, s, "alice")
				bob, _ := register(t, s, "bob")
				users := map[byte]server.User{a: alice, b: bob}
				for i, st := range tc.steps {
					runStep(t, s, i, st, users[st.me], users[st.other])
				}
				checkBook(t, s, alice, tc.alice)
				checkBook(t, s, bob, tc.bob)
			})
		}
	})

	t.Run("RequestSelf", func(t *testing.T) {
		s := open(t)
		alice, _ := register(t, s, "alice")
		if _, err := s.RequestContact(t.Context(), alice.ID, alice.ID); !errors.Is(err, rendezvous.ErrBadRequest) {
			t.Errorf("RequestContact(self): got %v, want %v", err, rendezvous.ErrBadRequest)
		}
		checkBook(t, s, alice, book{})
	})

	t.Run("ContactListsSorted", func(t *testing.T) {
		s := open(t)
		// Registered in reverse order, so that IDs do not sort like names.
		users := map[string]server.User{}
		for _, name := range []string{"zed", "yan", "xia", "wes", "vic", "una", "tom", "sam", "rex", "alice"} {
			users[name], _ = register(t, s, name)
		}
		alice := users["alice"]
		for _, name := range []string{"zed", "wes", "sam"} {
			request(t, s, users[name], alice, server.Requested)
			accept(t, s, alice, users[name])
		}
		for _, name := range []string{"yan", "tom", "rex"} {
			request(t, s, users[name], alice, server.Requested)
		}
		for _, name := range []string{"xia", "una"} {
			request(t, s, alice, users[name], server.Requested)
		}
		block(t, s, alice, users["vic"])
		block(t, s, alice, users["yan"]) // also drops yan's request
		checkBook(t, s, alice, book{
			Accepted: []string{"sam", "wes", "zed"},
			Incoming: []string{"rex", "tom"},
			Outgoing: []string{"una", "xia"},
			Blocked:  []string{"vic", "yan"},
		})
		l, err := s.ContactLists(t.Context(), alice.ID)
		if err != nil {
			t.Fatalf("ContactLists: %v", err)
		}
		for _, list := range [][]server.User{l.Accepted, l.Incoming, l.Outgoing, l.Blocked} {
			for _, u := range list {
				checkUser(t, "ContactLists entry", u, users[u.Name])
			}
		}
		checkBook(t, s, users["tom"], book{Outgoing: []string{"alice"}})
		checkBook(t, s, users["una"], book{Incoming: []string{"alice"}})
		checkBook(t, s, users["vic"], book{})
	})

	t.Run("ConcurrentMutualRequests", func(t *testing.T) {
		s := open(t)
		const pairs = 24 // each pair is one chance to lose the race
		var us, vs [pairs]server.User
		for i := range pairs {
			us[i], _ = register(t, s, fmt.Sprintf("u%d", i))
			vs[i], _ = register(t, s, fmt.Sprintf("v%d", i))
		}
		var (
			wg      sync.WaitGroup
			results [pairs][2]server.RequestResult
			errs    [pairs][2]error
		)
		for i := range pairs {
			wg.Go(func() { results[i][0], errs[i][0] = s.RequestContact(t.Context(), us[i].ID, vs[i].ID) })
			wg.Go(func() { results[i][1], errs[i][1] = s.RequestContact(t.Context(), vs[i].ID, us[i].ID) })
		}
		wg.Wait()
		for i := range pairs {
			if errs[i][0] != nil || errs[i][1] != nil {
				t.Errorf("pair %d: got errors %v, %v, want nil", i, errs[i][0], errs[i][1])
				continue
			}
			got := []server.RequestResult{results[i][0], results[i][1]}
			slices.Sort(got)
			if want := []server.RequestResult{server.Requested, server.Accepted}; !slices.Equal(got, want) {
				t.Errorf("pair %d: got results %v, want one Requested and one Accepted", i, got)
			}
			checkBook(t, s, us[i], book{Accepted: []string{vs[i].Name}})
			checkBook(t, s, vs[i], book{Accepted: []string{us[i].Name}})
		}
	})
}

func runStep(t *testing.T, s server.Store, i int, st step, me, other server.User) {
	t.Helper()
	ctx := t.Context()
	if st.op == "request" {
		got, err := s.RequestContact(ctx, me.ID, other.ID)
		if err != nil || got != st.result {
			t.Fatalf("step %d: RequestContact(%s, %s): got %v, %v, want %v", i, me.Name, other.Name, got, err, st.result)
		}
		return
	}
	var err error
	switch st.op {
	case "accept":
		err = s.AcceptContact(ctx, me.ID, other.ID)
	case "decline":
		err = s.DeclineContact(ctx, me.ID, other.ID)
	case "remove":
		err = s.RemoveContact(ctx, me.ID, other.ID)
	case "block":
		err = s.Block(ctx, me.ID, other.ID)
	case "unblock":
		err = s.Unblock(ctx, me.ID, other.ID)
	default:
		t.Fatalf("step %d: unknown op %q", i, st.op)
	}
	if (st.err == nil && err != nil) || !errors.Is(err, st.err) {
		t.Fatalf("step %d: %s(me %s, other %s): got %v, want %v", i, st.op, me.Name, other.Name, err, st.err)
	}
}

func runSessions(t *testing.T, open opener) {
	// setup registers alice (two devices) and bob (one device).
	setup := func(t *testing.T) (s server.Store, alice, bob server.User, a1, a2, b1 peer.ID) {
		s = open(t)
		alice, a1 = register(t, s, "alice")
		a2 = test.RandPeerIDFatal(t)
		if err := s.EnrolDevice(t.Context(), alice.ID, a2); err != nil {
			t.Fatalf("EnrolDevice: %v", err)
		}
		bob, b1 = register(t, s, "bob")
		return s, alice, bob, a1, a2, b1
	}
	addrs := func(ss ...string) [][]byte {
		var out [][]byte
		for _, a := range ss {
			out = append(out, []byte(a))
		}
		return out
	}

	t.Run("PutAndList", func(t *testing.T) {
		s, alice, bob, a1, a2, b1 := setup(t)
		heartbeat(t, s, "r1", base)
		heartbeat(t, s, "r2", base)
		sa1 := server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "r1",
			Addrs: addrs("/ip4/192.0.2.1/tcp/4001", "\x00binary\xff", ""), Started: base.Add(2 * time.Second)}
		sa2 := server.SessionRecord{Device: a2, UserID: alice.ID, Replica: "r2",
			Addrs: addrs("/ip4/198.51.100.7/udp/4001/quic-v1"), Started: base.Add(time.Second)}
		sb1 := server.SessionRecord{Device: b1, UserID: bob.ID, Replica: "r2", Started: base.Add(3 * time.Second)}
		for _, sess := range []server.SessionRecord{sa1, sa2, sb1} {
			putSession(t, s, sess)
		}
		since := base.Add(-time.Minute)
		checkSessions(t, s, since, []int64{alice.ID}, sa2, sa1)
		checkSessions(t, s, since, []int64{bob.ID}, sb1)
		checkSessions(t, s, since, []int64{bob.ID, alice.ID}, sa2, sa1, sb1)
		checkSessions(t, s, since, []int64{alice.ID, 1 << 40}, sa2, sa1)
		checkSessions(t, s, since, nil)
	})

	t.Run("ReplaceAndDelete", func(t *testing.T) {
		s, alice, _, a1, a2, _ := setup(t)
		heartbeat(t, s, "r1", base)
		heartbeat(t, s, "r2", base)
		putSession(t, s, server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "r1",
			Addrs: addrs("old"), Started: base})
		other := server.SessionRecord{Device: a2, UserID: alice.ID, Replica: "r1", Started: base.Add(time.Hour)}
		putSession(t, s, other)
		moved := server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "r2",
			Addrs: addrs("new1", "new2"), Started: base.Add(time.Minute)}
		putSession(t, s, moved)
		checkSessions(t, s, time.Time{}, []int64{alice.ID}, moved, other)

		// The device's session is on r2 now: deleting it on r1 is a no-op.
		if err := s.DeleteSession(t.Context(), a1, "r1"); err != nil {
			t.Fatalf("DeleteSession(r1): %v", err)
		}
		checkSessions(t, s, time.Time{}, []int64{alice.ID}, moved, other)
		if err := s.DeleteSession(t.Context(), a1, "r2"); err != nil {
			t.Fatalf("DeleteSession(r2): %v", err)
		}
		checkSessions(t, s, time.Time{}, []int64{alice.ID}, other)
		if err := s.DeleteSession(t.Context(), a1, "r2"); err != nil {
			t.Errorf("DeleteSession of a deleted session: got %v, want nil", err)
		}
		checkSessions(t, s, time.Time{}, []int64{alice.ID}, other)
	})

	t.Run("PutSessionRefused", func(t *testing.T) {
		s, alice, bob, a1, _, b1 := setup(t)
		heartbeat(t, s, "r1", base)
		for _, tc := range []struct {
			name string
			sess server.SessionRecord
			want error
		}{
			{"unknown replica", server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "nope", Started: base}, rendezvous.ErrNotFound},
			{"unknown device", server.SessionRecord{Device: test.RandPeerIDFatal(t), UserID: alice.ID, Replica: "r1", Started: base}, rendezvous.ErrNotFound},
			{"another user's device", server.SessionRecord{Device: b1, UserID: alice.ID, Replica: "r1", Started: base}, rendezvous.ErrNotFound},
		} {
			if err := s.PutSession(t.Context(), tc.sess); !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}
		checkSessions(t, s, time.Time{}, []int64{alice.ID, bob.ID})
	})

	t.Run("ReplicaLiveness", func(t *testing.T) {
		s, alice, bob, a1, a2, b1 := setup(t)
		heartbeat(t, s, "old", base)
		heartbeat(t, s, "new", base.Add(10*time.Second))
		sOld := server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "old", Started: base}
		sNew := server.SessionRecord{Device: a2, UserID: alice.ID, Replica: "new", Started: base.Add(time.Second)}
		sBob := server.SessionRecord{Device: b1, UserID: bob.ID, Replica: "old", Started: base.Add(2 * time.Second)}
		for _, sess := range []server.SessionRecord{sOld, sNew, sBob} {
			putSession(t, s, sess)
		}
		users := []int64{alice.ID, bob.ID}
		checkSessions(t, s, base.Add(-time.Millisecond), users, sOld, sNew, sBob)
		// Alive means a heartbeat strictly after aliveSince.
		checkSessions(t, s, base, users, sNew)
		checkSessions(t, s, base.Add(10*time.Second), users)
		// A later heartbeat brings the replica's sessions back.
		heartbeat(t, s, "old", base.Add(20*time.Second))
		checkSessions(t, s, base.Add(15*time.Second), users, sOld, sBob)
	})

	t.Run("ReapReplicas", func(t *testing.T) {
		s, alice, bob, a1, a2, b1 := setup(t)
		carol, c1 := register(t, s, "carol")
		dave, d1 := register(t, s, "dave")
		heartbeat(t, s, "r1", base)
		heartbeat(t, s, "r2", base.Add(10*time.Second))
		heartbeat(t, s, "r3", base.Add(20*time.Second))
		heartbeat(t, s, "empty", base)
		for _, sess := range []server.SessionRecord{
			{Device: a1, UserID: alice.ID, Replica: "r1", Started: base},
			{Device: a2, UserID: alice.ID, Replica: "r1", Started: base}, // alice twice on r1
			{Device: b1, UserID: bob.ID, Replica: "r2", Started: base},
			{Device: c1, UserID: carol.ID, Replica: "r1", Started: base},
		} {
			putSession(t, s, sess)
		}
		sDave := server.SessionRecord{Device: d1, UserID: dave.ID, Replica: "r3", Started: base}
		putSession(t, s, sDave)
		all := []int64{alice.ID, bob.ID, carol.ID, dave.ID}

		// Dead means a heartbeat strictly before deadBefore.
		if got := reap(t, s, base); len(got) != 0 {
			t.Errorf("ReapReplicas(oldest heartbeat): got users %v, want none", got)
		}
		if got, err := s.Sessions(t.Context(), time.Time{}, all...); err != nil || len(got) != 5 {
			t.Fatalf("Sessions after reaping nothing: got %d sessions, %v, want 5", len(got), err)
		}
		got := reap(t, s, base.Add(20*time.Second))
		want := []int64{alice.ID, bob.ID, carol.ID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ReapReplicas: got users %v, want %v (each once)", got, want)
		}
		checkSessions(t, s, time.Time{}, all, sDave)
		if got := reap(t, s, base.Add(20*time.Second)); len(got) != 0 {
			t.Errorf("second ReapReplicas: got users %v, want none", got)
		}
		// The reaped replica is gone until it beats again.
		sess := server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "r1", Started: base.Add(time.Minute)}
		if err := s.PutSession(t.Context(), sess); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("PutSession on a reaped replica: got %v, want %v", err, rendezvous.ErrNotFound)
		}
		heartbeat(t, s, "r1", base.Add(time.Minute))
		putSession(t, s, sess)
		checkSessions(t, s, time.Time{}, all, sDave, sess)
	})

	t.Run("DeleteReplica", func(t *testing.T) {
		s, alice, bob, a1, a2, b1 := setup(t)
		heartbeat(t, s, "r1", base)
		heartbeat(t, s, "r2", base)
		putSession(t, s, server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "r1", Started: base})
		putSession(t, s, server.SessionRecord{Device: b1, UserID: bob.ID, Replica: "r1", Started: base})
		keep := server.SessionRecord{Device: a2, UserID: alice.ID, Replica: "r2", Started: base}
		putSession(t, s, keep)

		got, err := s.DeleteReplica(t.Context(), "r1")
		if err != nil {
			t.Fatalf("DeleteReplica: %v", err)
		}
		slices.Sort(got)
		want := []int64{alice.ID, bob.ID}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("DeleteReplica: got users %v, want %v", got, want)
		}
		checkSessions(t, s, time.Time{}, []int64{alice.ID, bob.ID}, keep)
		if got, err := s.DeleteReplica(t.Context(), "r1"); err != nil || len(got) != 0 {
			t.Errorf("DeleteReplica of a deleted replica: got %v, %v, want no users and nil", got, err)
		}
		err = s.PutSession(t.Context(), server.SessionRecord{Device: a1, UserID: alice.ID, Replica: "r1", Started: base})
		if !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("PutSession on a deleted replica: got %v, want %v", err, rendezvous.ErrNotFound)
		}
	})
}

func reap(t *testing.T, s server.Store, deadBefore time.Time) []int64 {
	t.Helper()
	users, err := s.ReapReplicas(t.Context(), deadBefore)
	if err != nil {
		t.Fatalf("ReapReplicas: %v", err)
	}
	slices.Sort(users)
	return users
}

func runBus(t *testing.T, open opener, newStore opener) {
	t.Run("OrderAndFields", func(t *testing.T) {
		s := open(t)
		first := subscribe(t, s)
		second := subscribe(t, s)
		evs := manyEvents(t, 200)
		var wg sync.WaitGroup
		wg.Go(func() {
			for _, ev := range evs {
				if err := s.Publish(t.Context(), ev); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
		wg.Go(func() { expectEvents(t, "first subscriber", first, evs...) })
		wg.Go(func() { expectEvents(t, "second subscriber", second, evs...) })
		wg.Wait()
	})

	t.Run("OnlyLaterEvents", func(t *testing.T) {
		s := open(t)
		early := server.Event{Kind: server.EventPresence, UserID: 1}
		if err := s.Publish(t.Context(), early); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		ch := subscribe(t, s)
		late := server.Event{Kind: server.EventPresence, UserID: 2}
		if err := s.Publish(t.Context(), late); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		expectEvents(t, "subscriber", ch, late)
	})

	t.Run("ClosesWhenContextEnds", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		ch, err := s.Subscribe(ctx)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		live := subscribe(t, s)
		cancel()
		expectClosed(t, ch)
		// The store carries on for the others.
		ev := server.Event{Kind: server.EventPresence, UserID: 3}
		if err := s.Publish(t.Context(), ev); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		expectEvents(t, "live subscriber", live, ev)
	})

	t.Run("AbandonedSubscriberDoesNotBlock", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		if _, err := s.Subscribe(ctx); err != nil { // never read
			t.Fatalf("Subscribe: %v", err)
		}
		live := subscribe(t, s)
		cancel()
		evs := manyEvents(t, 300) // more than any sensible buffer
		var wg sync.WaitGroup
		wg.Go(func() { expectEvents(t, "live subscriber", live, evs...) })
		pctx, pcancel := context.WithTimeout(t.Context(), eventTimeout)
		defer pcancel()
		for i, ev := range evs {
			if err := s.Publish(pctx, ev); err != nil {
				t.Errorf("Publish %d with an abandoned subscriber: %v", i, err)
				break
			}
		}
		wg.Wait()
	})

	t.Run("CloseEndsSubscriptions", func(t *testing.T) {
		s := newStore(t)
		ch, err := s.Subscribe(t.Context())
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		expectClosed(t, ch)
		if err := s.Publish(t.Context(), server.Event{Kind: server.EventPresence, UserID: 1}); err == nil {
			t.Errorf("Publish after Close: got nil error, want one")
		}
		if _, err := s.Subscribe(t.Context()); err == nil {
			t.Errorf("Subscribe after Close: got nil error, want one")
		}
	})
}

// manyEvents returns n distinct events covering every kind and field.
func manyEvents(t *testing.T, n int) []server.Event {
	dev := test.RandPeerIDFatal(t)
	evs := make([]server.Event, n)
	for i := range evs {
		switch i % 4 {
		case 0:
			evs[i] = server.Event{Kind: server.EventPresence, UserID: int64(i), At: base.UnixMicro() + int64(i)}
		case 1:
			evs[i] = server.Event{Kind: server.EventContact, UserID: int64(i),
				Other: fmt.Sprintf("user%d", i), Change: server.ContactChange(1 + i%3)}
		case 2:
			evs[i] = server.Event{Kind: server.EventKick, UserID: int64(i), Device: dev}
		case 3:
			evs[i] = server.Event{Kind: server.EventKick, UserID: 1<<53 + int64(i)}
		}
	}
	return evs
}

// subscribe subscribes until the test ends.
func subscribe(t *testing.T, s server.Store) <-chan server.Event {
	t.Helper()
	ch, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return ch
}

// expectEvents receives len(want) events from ch and compares them with
// want, in order. It is safe to call from any goroutine.
func expectEvents(t *testing.T, who string, ch <-chan server.Event, want ...server.Event) {
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for i, w := range want {
		select {
		case got, ok := <-ch:
			if !ok {
				t.Errorf("%s: channel closed after %d events, want %d", who, i, len(want))
				return
			}
			if got != w {
				t.Errorf("%s: event %d: got %+v, want %+v", who, i, got, w)
				return
			}
		case <-timer.C:
			t.Errorf("%s: got %d events in %v, want %d", who, i, eventTimeout, len(want))
			return
		}
	}
}

// expectClosed waits until ch is closed, dropping events.
func expectClosed(t *testing.T, ch <-chan server.Event) {
	t.Helper()
	timer := time.NewTimer(eventTimeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("subscription channel still open after %v, want closed", eventTimeout)
		}
	}
}

// register creates a user called name with a fresh device.
func register(t *testing.T, s server.Store, name string) (server.User, peer.ID) {
	t.Helper()
	dev := test.RandPeerIDFatal(t)
	u, err := s.Register(t.Context(), name, []byte("hash of "+name), dev)
	if err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
	return u, dev
}

func request(t *testing.T, s server.Store, from, to server.User, want server.RequestResult) {
	t.Helper()
	got, err := s.RequestContact(t.Context(), from.ID, to.ID)
	if err != nil {
		t.Fatalf("RequestContact(%s, %s): %v", from.Name, to.Name, err)
	}
	if got != want {
		t.Errorf("RequestContact(%s, %s): got %v, want %v", from.Name, to.Name, got, want)
	}
}

func accept(t *testing.T, s server.Store, me, from server.User) {
	t.Helper()
	if err := s.AcceptContact(t.Context(), me.ID, from.ID); err != nil {
		t.Fatalf("AcceptContact(%s, %s): %v", me.Name, from.Name, err)
	}
}

func block(t *testing.T, s server.Store, me, other server.User) {
	t.Helper()
	if err := s.Block(t.Context(), me.ID, other.ID); err != nil {
		t.Fatalf("Block(%s, %s): %v", me.Name, other.Name, err)
	}
}

func heartbeat(t *testing.T, s server.Store, replica string, at time.Time) {
	t.Helper()
	if err := s.HeartbeatReplica(t.Context(), replica, at); err != nil {
		t.Fatalf("HeartbeatReplica(%s): %v", replica, err)
	}
}

func putSession(t *testing.T, s server.Store, sess server.SessionRecord) {
	t.Helper()
	if err := s.PutSession(t.Context(), sess); err != nil {
		t.Fatalf("PutSession(%s on %s): %v", sess.Device, sess.Replica, err)
	}
}

func devicesOf(t *testing.T, s server.Store, u server.User) []peer.ID {
	t.Helper()
	devs, err := s.Devices(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("Devices(%s): %v", u.Name, err)
	}
	var ids []peer.ID
	for _, d := range devs {
		ids = append(ids, d.Peer)
	}
	return ids
}

// checkDevices checks that u's devices are want, in order, and returns
// them.
func checkDevices(t *testing.T, s server.Store, u server.User, want ...peer.ID) []server.Device {
	t.Helper()
	devs, err := s.Devices(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("Devices(%s): %v", u.Name, err)
	}
	var got []peer.ID
	for _, d := range devs {
		got = append(got, d.Peer)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Devices(%s): got %v, want %v", u.Name, got, want)
	}
	return devs
}

// checkBook checks u's ContactLists, and that Contacts agrees with its
// Accepted list.
func checkBook(t *testing.T, s server.Store, u server.User, want book) {
	t.Helper()
	l, err := s.ContactLists(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("ContactLists(%s): %v", u.Name, err)
	}
	for _, c := range []struct {
		list string
		got  []server.User
		want []string
	}{
		{"Accepted", l.Accepted, want.Accepted},
		{"Incoming", l.Incoming, want.Incoming},
		{"Outgoing", l.Outgoing, want.Outgoing},
		{"Blocked", l.Blocked, want.Blocked},
	} {
		if got := names(c.got); !slices.Equal(got, c.want) {
			t.Errorf("ContactLists(%s).%s: got %q, want %q", u.Name, c.list, got, c.want)
		}
	}
	contacts, err := s.Contacts(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("Contacts(%s): %v", u.Name, err)
	}
	if got := names(contacts); !slices.Equal(got, want.Accepted) {
		t.Errorf("Contacts(%s): got %q, want %q", u.Name, got, want.Accepted)
	}
}

func names(users []server.User) []string {
	var out []string
	for _, u := range users {
		out = append(out, u.Name)
	}
	return out
}

// checkSessions checks Sessions(aliveSince, users...) against want, in
// order.
func checkSessions(t *testing.T, s server.Store, aliveSince time.Time, users []int64, want ...server.SessionRecord) {
	t.Helper()
	got, err := s.Sessions(t.Context(), aliveSince, users...)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("Sessions(%v, %v): got %d sessions %v, want %d %v", aliveSince, users, len(got), devices(got), len(want), devices(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Device != w.Device || g.UserID != w.UserID || g.Replica != w.Replica ||
			!g.Started.Equal(w.Started) || !equalAddrs(g.Addrs, w.Addrs) {
			t.Errorf("Sessions: session %d: got %s, want %s", i, describe(g), describe(w))
		}
	}
}

func devices(ss []server.SessionRecord) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Device.String()+"@"+s.Replica)
	}
	return out
}

func describe(s server.SessionRecord) string {
	return fmt.Sprintf("{device %s, user %d, replica %q, addrs %q, started %v}",
		s.Device, s.UserID, s.Replica, s.Addrs, s.Started)
}

func equalAddrs(a, b [][]byte) bool {
	return slices.EqualFunc(a, b, bytes.Equal)
}

func checkUser(t *testing.T, what string, got, want server.User) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || !bytes.Equal(got.PasswordHash, want.PasswordHash) ||
		!got.Created.Equal(want.Created) || !got.LastSeen.Equal(want.LastSeen) {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

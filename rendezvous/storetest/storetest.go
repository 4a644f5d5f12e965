// Package storetest is the conformance suite for rendezvous.Store
// implementations. Each implementation's tests call Run with a constructor
// for fresh, empty stores.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/test"

	"github.com/parleynet/parley/rendezvous"
)

// Run runs the suite. newStore must return a new, empty store for each
// subtest; Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) rendezvous.Store) {
	open := func(t *testing.T) rendezvous.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}

	t.Run("RegisterThenUserByName", func(t *testing.T) {
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
		owner, err := s.DeviceOwner(ctx, dev)
		if err != nil {
			t.Fatalf("DeviceOwner: %v", err)
		}
		checkUser(t, "DeviceOwner", owner, u)
	})

	t.Run("DuplicateUsername", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		register(t, s, "alice")
		dev := test.RandPeerIDFatal(t)
		if _, err := s.Register(ctx, "alice", []byte("other"), dev); !errors.Is(err, rendezvous.ErrUsernameTaken) {
			t.Errorf("second Register: got %v, want %v", err, rendezvous.ErrUsernameTaken)
		}
		if _, err := s.DeviceOwner(ctx, dev); !errors.Is(err, rendezvous.ErrNotFound) {
			t.Errorf("DeviceOwner of rejected device: got %v, want %v", err, rendezvous.ErrNotFound)
		}
	})

	t.Run("DeviceTaken", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			take    func(t *testing.T, s rendezvous.Store, dev peer.ID) error
			bobWant error // UserByName("bob") afterwards
		}{
			{"Register", func(t *testing.T, s rendezvous.Store, dev peer.ID) error {
				_, err := s.Register(t.Context(), "bob", []byte("hash"), dev)
				return err
			}, rendezvous.ErrNotFound},
			{"EnrolDevice", func(t *testing.T, s rendezvous.Store, dev peer.ID) error {
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
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		register(t, s, "alice")
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"DeviceOwner", func() error {
				_, err := s.DeviceOwner(t.Context(), test.RandPeerIDFatal(t))
				return err
			}},
			{"UserByName", func() error {
				_, err := s.UserByName(t.Context(), "nobody")
				return err
			}},
		} {
			if err := tc.call(); !errors.Is(err, rendezvous.ErrNotFound) {
				t.Errorf("%s: got %v, want %v", tc.name, err, rendezvous.ErrNotFound)
			}
		}
	})

	t.Run("AddContact", func(t *testing.T) {
		s := open(t)
		alice, _ := register(t, s, "alice")
		bob, _ := register(t, s, "bob")

		addContact(t, s, alice, bob, false)
		checkContacts(t, s, alice)
		checkContacts(t, s, bob)
		addContact(t, s, alice, bob, false) // repeated request

		addContact(t, s, bob, alice, true)
		checkContacts(t, s, alice, "bob")
		checkContacts(t, s, bob, "alice")

		addContact(t, s, alice, bob, true) // already contacts
		addContact(t, s, bob, alice, true)
		checkContacts(t, s, alice, "bob")
		checkContacts(t, s, bob, "alice")
	})

	t.Run("AddContactErrors", func(t *testing.T) {
		s := open(t)
		alice, _ := register(t, s, "alice")
		const unknown = 1 << 40
		for _, tc := range []struct {
			name     string
			from, to int64
			want     error
		}{
			{"self", alice.ID, alice.ID, rendezvous.ErrBadRequest},
			{"unknown to", alice.ID, unknown, rendezvous.ErrNotFound},
			{"unknown from", unknown, alice.ID, rendezvous.ErrNotFound},
		} {
			if _, err := s.AddContact(t.Context(), tc.from, tc.to); !errors.Is(err, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
			}
		}
		checkContacts(t, s, alice)
	})

	t.Run("ContactsSortedByName", func(t *testing.T) {
		s := open(t)
		alice, _ := register(t, s, "alice")
		for _, name := range []string{"dave", "bob", "carol"} {
			u, _ := register(t, s, name)
			addContact(t, s, u, alice, false)
			addContact(t, s, alice, u, true)
		}
		checkContacts(t, s, alice, "bob", "carol", "dave")
	})

	t.Run("SetLastSeen", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		alice, _ := register(t, s, "alice")
		seen := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
		if err := s.SetLastSeen(ctx, alice.ID, seen); err != nil {
			t.Fatalf("SetLastSeen: %v", err)
		}
		got, err := s.UserByName(ctx, "alice")
		if err != nil {
			t.Fatalf("UserByName: %v", err)
		}
		if want := seen.Truncate(time.Millisecond); !got.LastSeen.Equal(want) {
			t.Errorf("LastSeen: got %v, want %v", got.LastSeen, want)
		}
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

// register creates a user called name with a fresh device.
func register(t *testing.T, s rendezvous.Store, name string) (rendezvous.User, peer.ID) {
	t.Helper()
	dev := test.RandPeerIDFatal(t)
	u, err := s.Register(t.Context(), name, []byte("hash of "+name), dev)
	if err != nil {
		t.Fatalf("Register(%q): %v", name, err)
	}
	return u, dev
}

func addContact(t *testing.T, s rendezvous.Store, from, to rendezvous.User, want bool) {
	t.Helper()
	got, err := s.AddContact(t.Context(), from.ID, to.ID)
	if err != nil {
		t.Fatalf("AddContact(%s, %s): %v", from.Name, to.Name, err)
	}
	if got != want {
		t.Errorf("AddContact(%s, %s): got accepted %v, want %v", from.Name, to.Name, got, want)
	}
}

func checkContacts(t *testing.T, s rendezvous.Store, u rendezvous.User, want ...string) {
	t.Helper()
	contacts, err := s.Contacts(t.Context(), u.ID)
	if err != nil {
		t.Fatalf("Contacts(%s): %v", u.Name, err)
	}
	var got []string
	for _, c := range contacts {
		got = append(got, c.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Contacts(%s): got %q, want %q", u.Name, got, want)
	}
}

func checkUser(t *testing.T, what string, got, want rendezvous.User) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || !bytes.Equal(got.PasswordHash, want.PasswordHash) ||
		!got.Created.Equal(want.Created) || !got.LastSeen.Equal(want.LastSeen) {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

package sqlite

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/test"

	"github.com/parleynet/parley/internal/sqlitedb"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) server.Store {
		s, err := Open(filepath.Join(t.TempDir(), "rendezvous.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rendezvous.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	dev := test.RandPeerIDFatal(t)
	alice, err := s.Register(ctx, "alice", []byte("hash"), dev)
	if err != nil {
		t.Fatalf("Register(alice): %v", err)
	}
	bob, err := s.Register(ctx, "bob", []byte("hash"), test.RandPeerIDFatal(t))
	if err != nil {
		t.Fatalf("Register(bob): %v", err)
	}
	if got, err := s.RequestContact(ctx, alice.ID, bob.ID); err != nil || got != server.Requested {
		t.Fatalf("RequestContact: got %v, %v, want %v", got, err, server.Requested)
	}
	if err := s.AcceptContact(ctx, bob.ID, alice.ID); err != nil {
		t.Fatalf("AcceptContact: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if got, err := s.UserByName(ctx, "alice"); err != nil || got.ID != alice.ID {
		t.Errorf("UserByName(alice): got %+v, %v, want ID %d", got, err, alice.ID)
	}
	if got, err := s.DeviceOwner(ctx, dev); err != nil || got.ID != alice.ID {
		t.Errorf("DeviceOwner: got %+v, %v, want ID %d", got, err, alice.ID)
	}
	if got, err := s.Contacts(ctx, alice.ID); err != nil || len(got) != 1 || got[0].ID != bob.ID {
		t.Errorf("Contacts(alice): got %+v, %v, want [bob]", got, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatalf("count migrations: %v", err)
	}
	if n != len(migrations) {
		t.Errorf("schema_migrations rows: got %d, want %d", n, len(migrations))
	}
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{
		filepath.Join(dir, "missing", "rendezvous.db"),
		dir,
	} {
		s, err := Open(path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q): got nil error, want one", path)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%q): got error %q, want it to mention the path", path, err)
		}
	}
}

// TestUpgradeFromVersion1 opens a file written before migration 2 and
// checks that its data survives and the new features work on it.
func TestUpgradeFromVersion1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rendezvous.db")
	db, err := sqlitedb.Open(path, migrations[:1])
	if err != nil {
		t.Fatalf("open at version 1: %v", err)
	}
	dev, other := test.RandPeerIDFatal(t), test.RandPeerIDFatal(t)
	for _, stmt := range []string{
		`INSERT INTO users (id, name, password_hash, created_at) VALUES (1, 'alice', x'00', 1000), (2, 'bob', x'01', 2000)`,
		`INSERT INTO devices (peer_id, user_id, enrolled_at) VALUES ('` + dev.String() + `', 1, 1000), ('` + other.String() + `', 2, 2000)`,
		`INSERT INTO contacts (user_id, contact_id, state, created_at) VALUES (1, 2, 'accepted', 3000), (2, 1, 'accepted', 3000)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open (upgrade): %v", err)
	}
	defer s.Close()
	l, err := s.ContactLists(ctx, 1)
	if err != nil || len(l.Accepted) != 1 || l.Accepted[0].Name != "bob" || len(l.Blocked) != 0 {
		t.Errorf("ContactLists(alice) after upgrade: got %+v, %v, want bob accepted", l, err)
	}
	devs, err := s.Devices(ctx, 1)
	if err != nil || len(devs) != 1 || devs[0].Peer != dev || !devs[0].Revoked.IsZero() || devs[0].Enrolled.UnixMilli() != 1000 {
		t.Errorf("Devices(alice) after upgrade: got %+v, %v, want %s enrolled at 1000ms, not revoked", devs, err, dev)
	}
	if err := s.RevokeDevice(ctx, 1, dev); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	if _, err := s.DeviceOwner(ctx, dev); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("DeviceOwner(revoked): got %v, want %v", err, rendezvous.ErrDeviceRevoked)
	}
	if err := s.Block(ctx, 2, 1); err != nil {
		t.Fatalf("Block: %v", err)
	}
	if got, err := s.Contacts(ctx, 1); err != nil || len(got) != 0 {
		t.Errorf("Contacts(alice) after bob blocked her: got %+v, %v, want none", got, err)
	}
}

func BenchmarkMailbox(b *testing.B) {
	storetest.BenchMailbox(b, func(b *testing.B) server.Store {
		s, err := Open(filepath.Join(b.TempDir(), "rendezvous.db"))
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		return s
	})
}

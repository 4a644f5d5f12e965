package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/test"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) rendezvous.Store {
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
	for _, pair := range [][2]int64{{alice.ID, bob.ID}, {bob.ID, alice.ID}} {
		if _, err := s.AddContact(ctx, pair[0], pair[1]); err != nil {
			t.Fatalf("AddContact: %v", err)
		}
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

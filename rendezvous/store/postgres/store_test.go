package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/internal/tstest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/postgres/pgtest"
	"github.com/parleynet/parley/rendezvous/storetest"
)

// open opens a store on dbURL and closes it when the test ends.
func open(t *testing.T, dbURL string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) server.Store {
		s, err := Open(t.Context(), pgtest.NewDatabase(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (a, b server.Store) {
		dbURL := pgtest.NewDatabase(t)
		sa, err := Open(t.Context(), dbURL)
		if err != nil {
			t.Fatalf("Open(a): %v", err)
		}
		sb, err := Open(t.Context(), dbURL)
		if err != nil {
			sa.Close()
			t.Fatalf("Open(b): %v", err)
		}
		return sa, sb
	})
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), dbURL) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	var versions, max int
	if err := stores[0].pool.QueryRow(t.Context(),
		`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&versions, &max); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if versions != len(migrations) || max != len(migrations) {
		t.Errorf("schema_migrations: got %d rows up to version %d, want %d up to %d", versions, max, len(migrations), len(migrations))
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	s, err := Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version) VALUES ($1)`, len(migrations)+1); err != nil {
		t.Fatalf("insert version: %v", err)
	}
	s.Close()
	s, err = Open(t.Context(), dbURL)
	if err == nil {
		s.Close()
		t.Fatal("Open of a newer schema: got nil error, want a refusal")
	}
	if !strings.Contains(err.Error(), "newer than this build") {
		t.Errorf("Open of a newer schema: got %v, want it to say the schema is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dbURL := range []string{
		"postgres://user:hunter2@127.0.0.1:1/parley?connect_timeout=2",
		"postgres://user:hunter2@[::1/parley",
	} {
		s, err := Open(ctx, dbURL)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q): got nil error, want one", dbURL)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q): error %q shows the password", dbURL, err)
		}
	}
}

func TestPublishTooLarge(t *testing.T) {
	s := open(t, pgtest.NewDatabase(t))
	ev := server.Event{Kind: server.EventContact, UserID: 1, Other: strings.Repeat("x", 9000)}
	if err := s.Publish(t.Context(), ev); !errors.Is(err, rendezvous.ErrBadRequest) {
		t.Errorf("Publish(9000-byte name): got %v, want %v", err, rendezvous.ErrBadRequest)
	}
}

// TestListenerReconnects terminates the listener's server process and
// checks that the subscription survives and events flow again.
func TestListenerReconnects(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	s := open(t, dbURL)
	pub := open(t, dbURL) // another replica publishes
	sub, err := s.Subscribe(t.Context())
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	oldPID := s.listenerPID.Load()
	if oldPID == 0 {
		t.Fatal("listener PID: got 0 after Subscribe, want the backend's")
	}
	var terminated bool
	if err := pub.pool.QueryRow(t.Context(), `SELECT pg_terminate_backend($1)`, int32(oldPID)).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend(%d): got %v, %v, want true", oldPID, terminated, err)
	}

	// Events published while the listener reconnects may be lost: probe
	// until one arrives.
	deadline := time.Now().Add(20 * time.Second)
	for probe := int64(1); ; probe++ {
		if time.Now().After(deadline) {
			t.Fatalf("no event arrived within 20s of terminating the listener")
		}
		if err := pub.Publish(t.Context(), server.Event{Kind: server.EventPresence, UserID: probe}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
		select {
		case _, ok := <-sub:
			if !ok {
				t.Fatal("subscription closed when the listener connection broke, want it kept")
			}
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	if pid := s.listenerPID.Load(); pid == 0 || pid == oldPID {
		t.Errorf("listener PID after reconnecting: got %d, want a new one (old %d)", pid, oldPID)
	}

	// Now events flow in order again, from both stores.
	marker := server.Event{Kind: server.EventKick, UserID: -1}
	want := []server.Event{
		{Kind: server.EventContact, UserID: 10, Other: "alice", Change: server.ContactRequested},
		{Kind: server.EventKick, UserID: 11},
		{Kind: server.EventPresence, UserID: 12},
	}
	for _, ev := range append([]server.Event{marker}, want...) {
		if err := pub.Publish(t.Context(), ev); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	own := server.Event{Kind: server.EventPresence, UserID: 13}
	if err := s.Publish(t.Context(), own); err != nil {
		t.Fatalf("Publish on the subscribed store: %v", err)
	}
	want = append(want, own)
	timeout := time.After(10 * time.Second)
	for { // skip late probes
		select {
		case ev, ok := <-sub:
			if !ok {
				t.Fatal("subscription closed, want it open")
			}
			if ev == marker {
				goto rest
			}
			if ev.Kind != server.EventPresence {
				t.Fatalf("got event %+v before the marker, want only probes", ev)
			}
		case <-timeout:
			t.Fatal("marker event did not arrive within 10s")
		}
	}
rest:
	for i, w := range want {
		select {
		case got := <-sub:
			if got != w {
				t.Errorf("event %d after reconnecting: got %+v, want %+v", i, got, w)
			}
		case <-timeout:
			t.Fatalf("event %d after reconnecting: none within 10s, want %+v", i, w)
		}
	}
}

// TestCloseStopsListener checks that Close ends the listener's server
// process, not only the goroutine.
func TestCloseStopsListener(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	s, err := Open(t.Context(), dbURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.Subscribe(t.Context()); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	pid := s.listenerPID.Load()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	watcher := open(t, dbURL)
	tstest.WaitFor(t, 10*time.Second, func() error {
		var alive bool
		if err := watcher.pool.QueryRow(t.Context(),
			`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, int32(pid)).Scan(&alive); err != nil {
			return fmt.Errorf("pg_stat_activity: %w", err)
		}
		if alive {
			return fmt.Errorf("listener backend %d still connected after Close", pid)
		}
		return nil
	})
}

func BenchmarkMailbox(b *testing.B) {
	storetest.BenchMailbox(b, func(b *testing.B) server.Store {
		s, err := Open(b.Context(), pgtest.NewDatabase(b))
		if err != nil {
			b.Fatalf("Open: %v", err)
		}
		return s
	})
}

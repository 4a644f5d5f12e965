package testnet

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parleynet/parley/rendezvous/store/postgres/pgtest"
)

// rendezvousBinary is the server under load: $PARLEY_LOAD_SERVER, or
// cmd/parley-rendezvous built for this test.
func rendezvousBinary(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv("PARLEY_LOAD_SERVER"); bin != "" {
		return bin
	}
	bin, err := BuildRendezvous(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// loadDB is the database of a load benchmark: $PARLEY_LOAD_DB, a
// postgres:// URL, or "postgres" for a fresh database on the server in
// $PARLEY_TEST_POSTGRES; empty means SQLite.
func loadDB(tb testing.TB) string {
	db := os.Getenv("PARLEY_LOAD_DB")
	if db == "postgres" {
		return pgtest.NewDatabase(tb)
	}
	return db
}

// TestLoadSmall runs the load generator at a small scale against a real
// parley-rendezvous process, on each backend, and checks that every figure
// is there: every session saw each contact come online (Load fails
// otherwise) and every presence change reached every online contact.
func TestLoadSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process and 200 libp2p hosts")
	}
	bin := rendezvousBinary(t)
	for _, backend := range []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	} {
		t.Run(backend.name, func(t *testing.T) { testLoadSmall(t, bin, backend.db(t)) })
	}
}

func testLoadSmall(t *testing.T, bin, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const sessions, group, events, burst = 200, 5, 20, 10
	rep, err := Load(ctx, LoadConfig{
		Sessions:     sessions,
		Contacts:     group,
		DB:           db,
		ServerBinary: bin,
		FanoutEvents: events,
		BurstSize:    burst,
		Hold:         500 * time.Millisecond,
		Dir:          t.TempDir(),
	})
	if err != nil {
		t.Fatalf("load: %v\nreport so far:\n%s", err, rep)
	}
	t.Logf("\n%s", rep)

	contacts := group - 1
	pushes := func(n int) int { return n * contacts } // per event, every contact is online
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"sessions held", rep.Held, sessions},
		{"sessions held at the end", rep.HeldAtEnd, sessions},
		{"sessions dropped", int(rep.Dropped), 0},
		{"contacts per user", rep.Contacts, contacts},
		{"registrations", rep.Register.Ops, sessions},
		{"contact ops", rep.Contact.Ops, 2 * sessions / group * group * (group - 1) / 2},
		{"logins", rep.Login.Ops, sessions},
		{"spaced events", rep.Spaced.Events, 2 * events},
		{"spaced pushes", rep.Spaced.All.Samples, pushes(2 * events)},
		{"spaced pushes going offline", rep.Spaced.Offline.Samples, pushes(events)},
		{"spaced pushes missed", rep.Spaced.All.Missed, 0},
		{"burst events", rep.Burst.Events, 2 * 2 * burst},
		{"burst pushes", rep.Burst.All.Samples, pushes(2 * 2 * burst)},
		{"burst pushes missed", rep.Burst.All.Missed, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, c.got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"enrolments/s > 0", rep.Register.Rate() > 0},
		{"logins/s > 0", rep.Login.Rate() > 0},
		{"login p99 ≥ p50 > 0", rep.Login.P50 > 0 && rep.Login.P99 >= rep.Login.P50},
		{"fan-out p99 ≥ p50 > 0", rep.Spaced.All.P50 > 0 && rep.Spaced.All.P99 >= rep.Spaced.All.P50},
		{"fan-out max ≥ p99", rep.Spaced.All.Max >= rep.Spaced.All.P99},
		{"server RSS with sessions > 0", rep.ServerWithSessions.RSS > 0},
		{"server heap per session > 0", rep.HeapPerSession > 0},
		{"generator heap per session > 0", rep.GeneratorHeapPerSession > 0},
		{"shutdown took time", rep.Shutdown > 0},
	} {
		if !c.ok {
			t.Errorf("want %s", c.name)
		}
	}
}

// BenchmarkRendezvousLoad reports the load figures as benchmark metrics.
// It holds $PARLEY_LOAD_SESSIONS sessions (default 200, small enough for
// CI's single run) against $PARLEY_LOAD_DB (see loadDB; default SQLite),
// for example
//
//	PARLEY_LOAD_SESSIONS=10000 PARLEY_LOAD_DB=postgres PARLEY_TEST_POSTGRES=$(.ci/postgres.sh start) \
//	  go test -run '^$' -bench RendezvousLoad -benchtime 1x -timeout 30m ./testnet
func BenchmarkRendezvousLoad(b *testing.B) {
	sessions := 200
	if s := os.Getenv("PARLEY_LOAD_SESSIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("PARLEY_LOAD_SESSIONS=%q: want a positive number", s)
		}
		sessions = n
	}
	cfg := LoadConfig{
		Sessions:     sessions,
		DB:           loadDB(b),
		ServerBinary: rendezvousBinary(b),
		FanoutEvents: min(200, max(20, sessions/50)),
		Hold:         time.Second,
	}
	var rep LoadReport
	for b.Loop() {
		var err error
		cfg.Dir = b.TempDir()
		if rep, err = Load(context.Background(), cfg); err != nil {
			b.Fatalf("load: %v\nreport so far:\n%s", err, rep)
		}
	}
	b.Logf("\n%s", rep)
	b.ReportMetric(float64(rep.Held), "sessions")
	b.ReportMetric(rep.RSSPerSession, "B/session")
	b.ReportMetric(rep.HeapPerSession, "heapB/session")
	b.ReportMetric(rep.Login.Rate(), "logins/s")
	b.ReportMetric(rep.Register.Rate(), "enrolments/s")
	b.ReportMetric(float64(rep.Spaced.All.P50)/float64(time.Millisecond), "fanout-p50-ms")
	b.ReportMetric(float64(rep.Spaced.All.P99)/float64(time.Millisecond), "fanout-p99-ms")
	b.ReportMetric(float64(rep.Burst.All.P99)/float64(time.Millisecond), "burst-p99-ms")
}

// TestRelayLoadSmall has 100 clients reserve a slot on a real parley-relay
// process and checks the report: every slot is held and counted, and the
// supernode's memory grew with them.
func TestRelayLoadSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a supernode process and 100 libp2p hosts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := RelayLoad(ctx, RelayLoadConfig{Reservations: 100, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", err, rep)
	}
	rss, heap := rep.PerReservation()
	if rep.Reservations != 100 || heap <= 0 || rep.Loaded.Goroutines <= rep.Idle.Goroutines {
		t.Errorf("report does not show 100 reservations held:\n%s", rep)
	}
	t.Logf("\n%s(RSS %.1f KiB, heap %.1f KiB per reservation)", rep, rss/1024, heap/1024)
}

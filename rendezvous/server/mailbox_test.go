package server_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/postgres"
	"github.com/parleynet/parley/rendezvous/store/postgres/pgtest"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

// startServerOn starts a server on store with server.LocalConfig, changed
// by each of tweak; it and its node are closed when the test ends.
func startServerOn(t testing.TB, store server.Store, tweak ...func(*server.Config)) *testServer {
	t.Helper()
	n := newNode(t)
	cfg := server.LocalConfig(nodetest.Key(t))
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := server.New(t.Context(), n, store, cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &testServer{srv: srv, node: n}
}

// mailDevice is a device with a mailbox key it published.
type mailDevice struct {
	c        *client.Client
	id       peer.ID
	identity crypto.PrivKey
	box      *ecdh.PrivateKey
}

// newMailDevice makes a device of username (registering the account
// with the first device, enrolling the others) and publishes its key.
func newMailDevice(ctx context.Context, t testing.TB, ts *testServer, username string, first bool) mailDevice {
	t.Helper()
	c, n := newClient(t, ts)
	var err error
	if first {
		_, err = c.Register(ctx, username, "password1")
	} else {
		_, err = c.Enrol(ctx, username, "password1")
	}
	if err != nil {
		t.Fatalf("register or enrol %s: %v", username, err)
	}
	d := mailDevice{c: c, id: n.ID(), identity: n.Peerstore().PrivKey(n.ID())}
	d.publish(ctx, t, d.identity)
	return d
}

func (d *mailDevice) publish(ctx context.Context, t testing.TB, identity crypto.PrivKey) {
	t.Helper()
	box, err := seal.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.SignDeviceKey(identity, box.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.c.PublishDeviceKey(ctx, key); err != nil {
		t.Fatalf("PublishDeviceKey: %v", err)
	}
	d.box = box
}

// fetch fetches the device's mail (one answer's worth) and opens each message, trusting any
// sender device (the checks of Open are tested in package seal).
func (d *mailDevice) fetch(ctx context.Context, t testing.TB) ([]client.Mail, []*seal.Message) {
	t.Helper()
	mail, _, err := d.c.FetchMail(ctx, 0)
	if err != nil {
		t.Fatalf("FetchMail: %v", err)
	}
	var msgs []*seal.Message
	for _, m := range mail {
		msg, err := d.c.OpenMail(d.box, m, func(string, peer.ID) bool { return true })
		if err != nil {
			t.Errorf("OpenMail(%d): %v", m.ID, err)
			continue
		}
		msgs = append(msgs, msg)
	}
	return mail, msgs
}

func (d *mailDevice) ackAll(ctx context.Context, t testing.TB, mail []client.Mail) {
	t.Helper()
	var ids []uint64
	for _, m := range mail {
		ids = append(ids, m.ID)
	}
	if n, err := d.c.AckMail(ctx, ids); err != nil || n != len(ids) {
		t.Fatalf("AckMail: got %d, %v, want %d", n, err, len(ids))
	}
}

func bodies(msgs []*seal.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Body))
	}
	return out
}

// mailWorld is alice (one device) and bob (two devices), contacts.
type mailWorld struct {
	ts         *testServer
	alice      mailDevice
	bob1, bob2 mailDevice
}

func newMailWorld(ctx context.Context, t testing.TB, ts *testServer) *mailWorld {
	t.Helper()
	w := &mailWorld{ts: ts}
	w.alice = newMailDevice(ctx, t, ts, "alice", true)
	w.bob1 = newMailDevice(ctx, t, ts, "bob", true)
	w.bob2 = newMailDevice(ctx, t, ts, "bob", false)
	makeContacts(ctx, t, w.alice.c, w.bob1.c, "bob", "alice")
	return w
}

func send(ctx context.Context, t testing.TB, from mailDevice, fromUser, to, id, body string) client.Deposited {
	t.Helper()
	d, err := from.c.SendMail(ctx, fromUser, to, id, []byte(body))
	if err != nil {
		t.Fatalf("SendMail(%s): %v", id, err)
	}
	return d
}

const secretBody = "the plaintext that must never reach the server: 7f3a9c"

func TestMailboxDeliveredToEveryDevice(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "rendezvous.db")
	store, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	w := newMailWorld(ctx, t, startServerOn(t, store))

	first := send(ctx, t, w.alice, "alice", "bob", "m1", secretBody)
	if first.Duplicate {
		t.Error("first deposit: a duplicate")
	}
	send(ctx, t, w.alice, "alice", "bob", "m2", "second")
	// A replayed deposit changes nothing.
	if again := send(ctx, t, w.alice, "alice", "bob", "m1", secretBody); !again.Duplicate || again.ID != first.ID {
		t.Errorf("deposit again: got %+v, want a duplicate of %d", again, first.ID)
	}
	checkNoPlaintextSQLite(t, path, secretBody)
	// The control: what the server does store is found in the files.
	if !sqliteFilesContain(t, path, w.alice.id.String()) {
		t.Error("the sender device's peer ID is in no database file: the search reads the wrong files")
	}

	// Login says mail waits.
	if s := login(ctx, t, w.bob1.c, nil); s.PendingMail != 2 {
		t.Errorf("Login: PendingMail %d, want 2", s.PendingMail)
	}
	mail, msgs := w.bob1.fetch(ctx, t)
	if got := bodies(msgs); len(got) != 2 || got[0] != secretBody || got[1] != "second" {
		t.Fatalf("bob1's mail: got %q", got)
	}
	if m := mail[0]; m.Sender != "alice" || m.SenderDevice != w.alice.id || m.MessageID != "m1" {
		t.Errorf("bob1's first mail: got %+v", m)
	}
	w.bob1.ackAll(ctx, t, mail)
	if mail, _ := w.bob1.fetch(ctx, t); len(mail) != 0 {
		t.Errorf("bob1 after acknowledging: got %d messages, want none", len(mail))
	}
	// bob2 still has both; once it acknowledges, the messages are gone.
	mail, msgs = w.bob2.fetch(ctx, t)
	if got := bodies(msgs); len(got) != 2 {
		t.Fatalf("bob2's mail: got %q, want both", got)
	}
	w.bob2.ackAll(ctx, t, mail)
	for _, table := range []string{"mail", "mail_copies"} {
		if n := sqliteCountAt(t, path, table); n != 0 {
			t.Errorf("after delivery to every device, %s has %d rows, want 0", table, n)
		}
	}
	checkNoPlaintextSQLite(t, path, secretBody)
}

// sqliteCountAt counts a table's rows through a second connection to
// the SQLite file.
func sqliteCountAt(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// sqliteFilesContain reports whether any file of the SQLite database
// holds s.
func sqliteFilesContain(t *testing.T, path, s string) bool {
	t.Helper()
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// checkNoPlaintextSQLite greps every file of the SQLite database (main
// file, WAL, journal) for the plaintext.
func checkNoPlaintextSQLite(t *testing.T, path, plain string) {
	t.Helper()
	files, _ := filepath.Glob(path + "*")
	if len(files) == 0 {
		t.Fatalf("no database files at %s", path)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(plain)) {
			t.Errorf("%s holds the plaintext", filepath.Base(f))
		}
	}
}

func TestMailboxNoPlaintextPostgres(t *testing.T) {
	ctx := testContext(t)
	dbURL := pgtest.NewDatabase(t)
	store, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	w := newMailWorld(ctx, t, startServerOn(t, store))
	send(ctx, t, w.alice, "alice", "bob", "m1", secretBody)

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	hexBody := []byte(strings.ToLower(hexOf(secretBody)))
	sawCiphertext := false
	for _, table := range tables {
		// Every row as text: bytea columns come out as hex.
		rows, err := conn.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range texts {
			if strings.Contains(row, secretBody) || bytes.Contains([]byte(strings.ToLower(row)), hexBody) {
				t.Errorf("table %s holds the plaintext: %.200s", table, row)
			}
		}
		sawCiphertext = sawCiphertext || (table == "mail_copies" && len(texts) == 2)
	}
	if !sawCiphertext {
		t.Errorf("mail_copies does not hold the two copies; tables %v", tables)
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(s))
	for _, b := range []byte(s) {
		out = append(out, digits[b>>4], digits[b&15])
	}
	return string(out)
}

func TestMailboxRefusals(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t)
	w := newMailWorld(ctx, t, ts)
	carol := newMailDevice(ctx, t, ts, "carol", true)

	// Not contacts: no keys, no deposit; an unknown user looks the same.
	for _, user := range []string{"carol", "nobody"} {
		if _, err := w.alice.c.DeviceKeys(ctx, user); !errors.Is(err, rendezvous.ErrContactRequired) {
			t.Errorf("DeviceKeys(%s): got %v, want ErrContactRequired", user, err)
		}
		env := []client.Envelope{{Device: carol.id, Ciphertext: []byte("x")}}
		if _, err := w.alice.c.Deposit(ctx, user, "m1", env); !errors.Is(err, rendezvous.ErrContactRequired) {
			t.Errorf("Deposit(%s): got %v, want ErrContactRequired", user, err)
		}
	}
	// One's own keys are visible.
	if keys, err := w.bob1.c.DeviceKeys(ctx, "bob"); err != nil || len(keys) != 2 {
		t.Errorf("DeviceKeys(own): got %d keys, %v, want 2", len(keys), err)
	}

	// A key signed by another device is refused.
	other := nodetest.Key(t)
	bogus, err := seal.SignDeviceKey(other, w.bob1.box.PublicKey(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bogus.Peer = w.bob1.id // pass the client's own check
	if err := w.bob1.c.PublishDeviceKey(ctx, bogus); !errors.Is(err, rendezvous.ErrBadRequest) {
		t.Errorf("PublishDeviceKey(signed by another key): got %v, want ErrBadRequest", err)
	}

	// Envelopes that do not match bob's devices.
	keys, err := w.alice.c.DeviceKeys(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	one := []client.Envelope{{Device: keys[0].Peer, Ciphertext: []byte("sealed")}}
	if _, err := w.alice.c.Deposit(ctx, "bob", "m1", one); !errors.Is(err, rendezvous.ErrDeviceKeysChanged) {
		t.Errorf("Deposit to one of two devices: got %v, want ErrDeviceKeysChanged", err)
	}
	// Too large a ciphertext.
	huge := []client.Envelope{{Device: keys[0].Peer, Ciphertext: make([]byte, rendezvous.MaxMailCiphertext+1)}, {Device: keys[1].Peer, Ciphertext: []byte("x")}}
	if _, err := w.alice.c.Deposit(ctx, "bob", "m1", huge); !errors.Is(err, rendezvous.ErrBadRequest) {
		t.Errorf("Deposit of a huge ciphertext: got %v, want ErrBadRequest", err)
	}

	// A new device of bob: SendMail fetches the keys anew and seals to
	// all three.
	bob3 := newMailDevice(ctx, t, ts, "bob", false)
	send(ctx, t, w.alice, "alice", "bob", "m2", "hello three")
	for _, d := range []mailDevice{w.bob1, w.bob2, bob3} {
		if _, msgs := d.fetch(ctx, t); len(msgs) != 1 || string(msgs[0].Body) != "hello three" {
			t.Errorf("device %s: got %q", d.id, bodies(msgs))
		}
	}
}

// TestMailboxForgedSender: a contact deposits, under its own name, a
// ciphertext alice sealed for bob (stolen from a server's disk): bob's
// device refuses it, since alice signed it and mallory deposited it.
func TestMailboxForgedSender(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t)
	w := newMailWorld(ctx, t, ts)
	mallory := newMailDevice(ctx, t, ts, "mallory", true)
	makeContacts(ctx, t, mallory.c, w.bob1.c, "bob", "mallory")

	send(ctx, t, w.alice, "alice", "bob", "m1", "from alice")
	stolen, _, err := w.bob1.c.FetchMail(ctx, 0)
	if err != nil || len(stolen) != 1 {
		t.Fatalf("FetchMail: %v, %d", err, len(stolen))
	}
	stolen2, _, _ := w.bob2.c.FetchMail(ctx, 0)
	envs := []client.Envelope{{Device: w.bob1.id, Ciphertext: stolen[0].Ciphertext}, {Device: w.bob2.id, Ciphertext: stolen2[0].Ciphertext}}
	if _, err := mallory.c.Deposit(ctx, "bob", "m1", envs); err != nil {
		t.Fatalf("mallory's deposit: %v", err)
	}
	mail, _, err := w.bob1.c.FetchMail(ctx, 0)
	if err != nil || len(mail) != 2 {
		t.Fatalf("FetchMail: %v, %d", err, len(mail))
	}
	anyone := func(string, peer.ID) bool { return true }
	if _, err := w.bob1.c.OpenMail(w.bob1.box, mail[0], anyone); err != nil {
		t.Errorf("alice's own deposit: %v", err)
	}
	if msg, err := w.bob1.c.OpenMail(w.bob1.box, mail[1], anyone); !errors.Is(err, seal.ErrUnknownSender) {
		t.Errorf("mallory's deposit of alice's ciphertext: got %+v, %v, want ErrUnknownSender", msg, err)
	}
	// And bob2's copy does not open on bob1 (wrong recipient).
	m := mail[0]
	m.Ciphertext = stolen2[0].Ciphertext
	if _, err := w.bob1.c.OpenMail(w.bob1.box, m, anyone); !errors.Is(err, seal.ErrDecrypt) {
		t.Errorf("bob2's copy on bob1: got %v, want ErrDecrypt", err)
	}
}

func TestMailboxQuota(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, func(c *server.Config) { c.Mailbox.MaxMessages = 2 })
	w := newMailWorld(ctx, t, ts)
	send(ctx, t, w.alice, "alice", "bob", "m1", "one")
	send(ctx, t, w.alice, "alice", "bob", "m2", "two")
	_, err := w.alice.c.SendMail(ctx, "alice", "bob", "m3", []byte("three"))
	if !errors.Is(err, rendezvous.ErrMailboxFull) {
		t.Fatalf("third message: got %v, want ErrMailboxFull", err)
	}
	se := statusErr(t, err)
	if se.Status != pb.Status_STATUS_RESOURCE_EXHAUSTED || se.Code != "mailbox_full" ||
		!strings.Contains(se.Message, "bob's mailbox is full; the message stays queued on your device and is retried") {
		t.Errorf("mailbox full: got %+v", se)
	}
	// Delivered everywhere, the room is free again.
	for _, d := range []mailDevice{w.bob1, w.bob2} {
		mail, _ := d.fetch(ctx, t)
		d.ackAll(ctx, t, mail)
	}
	send(ctx, t, w.alice, "alice", "bob", "m3", "three")
}

func TestMailboxExpires(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "rendezvous.db")
	store, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ts := startServerOn(t, store, func(c *server.Config) {
		c.Mailbox.TTL = 500 * time.Millisecond
		c.Mailbox.SweepEvery = 50 * time.Millisecond
	})
	w := newMailWorld(ctx, t, ts)
	send(ctx, t, w.alice, "alice", "bob", "m1", "soon gone")
	if mail, _, err := w.bob1.c.FetchMail(ctx, 0); err != nil || len(mail) != 1 {
		t.Fatalf("FetchMail before the TTL: got %d, %v, want 1", len(mail), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for sqliteCountAt(t, path, "mail") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("expired mail was not swept")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := sqliteCountAt(t, path, "mail_copies"); n != 0 {
		t.Errorf("mail_copies after the sweep: %d rows", n)
	}
	if mail, _, err := w.bob2.c.FetchMail(ctx, 0); err != nil || len(mail) != 0 {
		t.Errorf("FetchMail after the TTL: got %d, %v, want none", len(mail), err)
	}
}

func TestMailboxRevokedDevice(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t)
	w := newMailWorld(ctx, t, ts)
	send(ctx, t, w.alice, "alice", "bob", "m1", "before")
	if err := w.bob1.c.RevokeDevice(ctx, w.bob2.id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.bob2.c.FetchMail(ctx, 0); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("FetchMail on a revoked device: got %v, want ErrDeviceRevoked", err)
	}
	keys, err := w.alice.c.DeviceKeys(ctx, "bob")
	if err != nil || len(keys) != 1 || keys[0].Peer != w.bob1.id {
		t.Errorf("DeviceKeys after the revocation: got %v, %v, want bob1's only", keys, err)
	}
	// A deposit sealed to the revoked device is refused; SendMail seals
	// to bob1 only.
	ct, err := seal.Seal(nodetest.Key(t), "alice", keys[0], "m2", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	envs := []client.Envelope{{Device: w.bob1.id, Ciphertext: ct}, {Device: w.bob2.id, Ciphertext: ct}}
	if _, err := w.alice.c.Deposit(ctx, "bob", "m2", envs); !errors.Is(err, rendezvous.ErrDeviceKeysChanged) {
		t.Errorf("Deposit to a revoked device: got %v, want ErrDeviceKeysChanged", err)
	}
	send(ctx, t, w.alice, "alice", "bob", "m3", "after")
	if _, msgs := w.bob1.fetch(ctx, t); len(msgs) != 2 {
		t.Errorf("bob1: got %q, want both messages", bodies(msgs))
	}
}

// BenchmarkMailbox measures the mailbox end to end, over libp2p streams
// with real sealing, on SQLite and PostgreSQL: messages deposited per
// second by one sender (sealed to bob's two devices, keys fetched once),
// and messages fetched, opened and acknowledged per second by each of
// bob's devices in turn. Each iteration handles serverBenchBatch
// messages.
func BenchmarkMailbox(b *testing.B) {
	b.Run("SQLite", func(b *testing.B) {
		store, err := sqlite.Open(filepath.Join(b.TempDir(), "rendezvous.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
		benchMailboxServer(b, store)
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		store, err := postgres.Open(b.Context(), pgtest.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = store.Close() })
		benchMailboxServer(b, store)
	})
}

const serverBenchBatch = 100

func benchMailboxServer(b *testing.B, store server.Store) {
	ctx := b.Context()
	ts := startServerOn(b, store, func(c *server.Config) { c.Limits = server.NoLimits() })
	w := newMailWorld(ctx, b, ts)
	var deposit, fetch time.Duration
	msgs := 0
	body := []byte(strings.Repeat("a chat message of about two hundred bytes. ", 5))
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		keys, err := w.alice.c.DeviceKeys(ctx, "bob")
		if err != nil {
			b.Fatal(err)
		}
		for j := range serverBenchBatch {
			id := fmt.Sprintf("m%d-%d", i, j)
			envs := make([]client.Envelope, 0, len(keys))
			for _, k := range keys {
				ct, err := seal.Seal(w.alice.identity, "alice", k, id, body)
				if err != nil {
					b.Fatal(err)
				}
				envs = append(envs, client.Envelope{Device: k.Peer, Ciphertext: ct})
			}
			if _, err := w.alice.c.Deposit(ctx, "bob", id, envs); err != nil {
				b.Fatal(err)
			}
		}
		deposit += time.Since(start)
		start = time.Now()
		for _, d := range []mailDevice{w.bob1, w.bob2} {
			for got := 0; got < serverBenchBatch; {
				mail, msgs := d.fetch(ctx, b)
				if len(msgs) != len(mail) || len(mail) == 0 {
					b.Fatalf("fetched %d, opened %d", len(mail), len(msgs))
				}
				d.ackAll(ctx, b, mail)
				got += len(mail)
			}
		}
		fetch += time.Since(start)
		msgs += serverBenchBatch
	}
	b.ReportMetric(float64(msgs)/deposit.Seconds(), "deposit-msg/s")
	b.ReportMetric(float64(msgs)/fetch.Seconds(), "fetch+ack-msg/s")
}

// TestMailboxLimitsAgree: what package seal produces fits the protocol's
// limits, and a deposit to MaxMailDevices devices of the largest sealed
// message fits in one frame.
func TestMailboxLimitsAgree(t *testing.T) {
	if seal.MaxSealed > rendezvous.MaxMailCiphertext {
		t.Errorf("seal.MaxSealed %d > rendezvous.MaxMailCiphertext %d", seal.MaxSealed, rendezvous.MaxMailCiphertext)
	}
	if seal.MaxDeviceKey > rendezvous.MaxDeviceKey {
		t.Errorf("seal.MaxDeviceKey %d > rendezvous.MaxDeviceKey %d", seal.MaxDeviceKey, rendezvous.MaxDeviceKey)
	}
	if seal.MaxMessageID > rendezvous.MaxMessageID {
		t.Errorf("seal.MaxMessageID %d > rendezvous.MaxMessageID %d", seal.MaxMessageID, rendezvous.MaxMessageID)
	}
	d := &pb.DepositRequest{To: strings.Repeat("u", 32), MessageId: strings.Repeat("i", rendezvous.MaxMessageID)}
	for range rendezvous.MaxMailDevices {
		// A peer ID of an RSA key is the longest kind.
		d.Envelopes = append(d.Envelopes, &pb.MailEnvelope{PeerId: make([]byte, 64), Ciphertext: make([]byte, rendezvous.MaxMailCiphertext)})
	}
	req := &pb.Request{Body: &pb.Request_Deposit{Deposit: d}}
	if n := proto.Size(req) + 8; n > rendezvous.MaxDepositSize {
		t.Errorf("the largest deposit takes %d bytes framed, MaxDepositSize is %d", n, rendezvous.MaxDepositSize)
	}
	// The largest mail fits a fetch answer.
	m := &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_Mail{Mail: &pb.MailList{More: true, Mail: []*pb.Mail{{
		Id: 1 << 62, Sender: strings.Repeat("u", 32), SenderPeerId: make([]byte, 64), MessageId: d.MessageId,
		DepositedUnixMs: 1 << 50, Ciphertext: make([]byte, rendezvous.MaxMailCiphertext),
	}}}}}
	if n := proto.Size(m); n > rendezvous.MaxResponseSize-256 {
		t.Errorf("one mail takes %d bytes, over a fetch answer's budget", n)
	}
}

// TestMailboxPushedToOnlineDevice: a logged-in device that published a
// key is told when mail arrives for it; the account's device without a
// key is not.
func TestMailboxPushedToOnlineDevice(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t)
	w := newMailWorld(ctx, t, ts)
	noKey, _ := newClient(t, ts)
	if _, err := noKey.Enrol(ctx, "bob", "password1"); err != nil {
		t.Fatal(err)
	}
	s1 := login(ctx, t, w.bob1.c, nil)
	s3 := login(ctx, t, noKey, nil)
	send(ctx, t, w.alice, "alice", "bob", "m1", "are you there?")
	for {
		u := nextUpdate(ctx, t, s1)
		if u.Mail {
			break
		}
	}
	if mail, _ := w.bob1.fetch(ctx, t); len(mail) != 1 {
		t.Errorf("fetched %d messages after the push, want 1", len(mail))
	}
	// The device without a key got no push: the push to bob1 is out, and
	// for a while more nothing but presence arrives on its session.
	quiet := time.After(300 * time.Millisecond)
	for {
		select {
		case u := <-s3.Updates():
			if u.Mail {
				t.Fatal("a device without a mailbox key was pushed mail_waiting")
			}
		case <-quiet:
			return
		}
	}
}

// TestMailboxReceiveMail: ReceiveMail delivers every message across
// several answers, acknowledges what does not open, and leaves what
// deliver refused on the server.
func TestMailboxReceiveMail(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t, func(c *server.Config) { c.Mailbox.FetchDefault = 3; c.Limits = server.NoLimits() })
	w := newMailWorld(ctx, t, ts)
	for i := range 7 {
		send(ctx, t, w.alice, "alice", "bob", fmt.Sprintf("m%d", i), fmt.Sprintf("body %d", i))
	}
	// A message alice's device signs as someone else is rejected.
	send(ctx, t, w.alice, "not-alice", "bob", "forged", "forged")
	isAlice := func(user string, p peer.ID) bool { return user == "alice" && p == w.alice.id }

	// deliver fails at the fourth message: three delivered and the
	// forged one (last) not reached yet.
	var got []string
	n, err := w.bob1.c.ReceiveMail(ctx, w.bob1.box, isAlice, func(m *seal.Message) error {
		if len(got) == 3 {
			return errors.New("disk full")
		}
		got = append(got, string(m.Body))
		return nil
	}, nil)
	if n != 3 || err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("ReceiveMail with a failing deliver: got %d, %v, want 3 and the error", n, err)
	}
	var rejected []string
	n, err = w.bob1.c.ReceiveMail(ctx, w.bob1.box, isAlice, func(m *seal.Message) error {
		got = append(got, string(m.Body))
		return nil
	}, func(m client.Mail, err error) { rejected = append(rejected, m.MessageID) })
	if err != nil || n != 4 {
		t.Fatalf("ReceiveMail: got %d, %v, want 4", n, err)
	}
	if want := "[body 0 body 1 body 2 body 3 body 4 body 5 body 6]"; fmt.Sprint(got) != want {
		t.Errorf("delivered %v, want %s", got, want)
	}
	if fmt.Sprint(rejected) != "[forged]" {
		t.Errorf("rejected %v, want [forged]", rejected)
	}
	if mail, _, err := w.bob1.c.FetchMail(ctx, 0); err != nil || len(mail) != 0 {
		t.Errorf("after ReceiveMail: %d messages left, %v", len(mail), err)
	}
}

// A user's device deposits copies for the user's other devices (a sent
// message, a read receipt), and a sender that reached one device of a
// contact directly deposits for the others only.
func TestMailboxOtherDevices(t *testing.T) {
	ctx := testContext(t)
	ts := startServer(t)
	w := newMailWorld(ctx, t, ts)

	// bob1 to its own account: bob2 gets it, bob1 does not.
	send(ctx, t, w.bob1, "bob", "bob", "own1", "sent from bob1")
	if _, msgs := w.bob2.fetch(ctx, t); len(msgs) != 1 || msgs[0].SenderUser != "bob" || string(msgs[0].Body) != "sent from bob1" {
		t.Errorf("bob2's mail: got %q, want bob1's copy", bodies(msgs))
	}
	if mail, _ := w.bob1.fetch(ctx, t); len(mail) != 0 {
		t.Errorf("bob1 got %d copies of its own deposit, want none", len(mail))
	}

	// alice reached bob1 directly: only bob2 gets a copy.
	if _, err := w.alice.c.SendMail(ctx, "alice", "bob", "direct1", []byte("copy"), w.bob1.id); err != nil {
		t.Fatalf("SendMail with has: %v", err)
	}
	if _, msgs := w.bob2.fetch(ctx, t); len(msgs) != 2 || string(msgs[1].Body) != "copy" {
		t.Errorf("bob2's mail: got %q, want the copy too", bodies(msgs))
	}
	if mail, _ := w.bob1.fetch(ctx, t); len(mail) != 0 {
		t.Errorf("bob1, which had the message, got %d copies", len(mail))
	}
	// Every device has it: nothing to deposit.
	if _, err := w.alice.c.SendMail(ctx, "alice", "bob", "direct2", []byte("x"), w.bob1.id, w.bob2.id); !errors.Is(err, client.ErrNoOtherDevice) {
		t.Errorf("SendMail to no other device: got %v, want ErrNoOtherDevice", err)
	}
	// Leaving a device out without saying it has the message is refused.
	keys, err := w.alice.c.DeviceKeys(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Peer != w.bob2.id {
			continue
		}
		env := []client.Envelope{{Device: k.Peer, Ciphertext: []byte("x")}}
		if _, err := w.alice.c.Deposit(ctx, "bob", "m9", env); !errors.Is(err, rendezvous.ErrDeviceKeysChanged) {
			t.Errorf("Deposit without bob1's copy: got %v, want ErrDeviceKeysChanged", err)
		}
		if _, err := w.alice.c.Deposit(ctx, "bob", "m9", env, w.bob1.id); err != nil {
			t.Errorf("Deposit with has=bob1: %v", err)
		}
	}
}

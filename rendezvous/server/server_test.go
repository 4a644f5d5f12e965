package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

// testTimeout bounds each test's network exchanges.
const testTimeout = 30 * time.Second

// testServer is a rendezvous server on a loopback node with a SQLite store
// in a temporary directory.
type testServer struct {
	srv  *server.Server
	node *node.Node
}

func (ts *testServer) info() peer.AddrInfo {
	return peer.AddrInfo{ID: ts.node.ID(), Addrs: ts.node.Addrs()}
}

// newNode starts a publicly reachable loopback node that is closed when the
// test ends.
func newNode(t testing.TB) *node.Node {
	t.Helper()
	return nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
}

// startServer starts a server with server.LocalConfig, changed by
// each of tweak; it, its node and its store are closed when the test ends.
func startServer(t testing.TB, tweak ...func(*server.Config)) *testServer {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "rendezvous.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	n := newNode(t)
	cfg := server.LocalConfig(nodetest.Key(t))
	// The test supernodes are bare nodes announcing themselves: they
	// pass. TestSupernodeCheck runs the real check.
	cfg.SupernodeCheck = func(context.Context, peer.AddrInfo) error { return nil }
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

// newClient starts a client device (its own node and peer ID) of ts.
func newClient(t testing.TB, ts *testServer) (*client.Client, *node.Node) {
	t.Helper()
	n := newNode(t)
	return client.New(n, ts.info()), n
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// register makes a new device and registers username on it.
func register(ctx context.Context, t *testing.T, ts *testServer, username, password string) *client.Client {
	t.Helper()
	c, _ := registerDevice(ctx, t, ts, username, password)
	return c
}

// registerDevice is register that also returns the device's peer ID.
func registerDevice(ctx context.Context, t *testing.T, ts *testServer, username, password string) (*client.Client, peer.ID) {
	t.Helper()
	c, n := newClient(t, ts)
	got, err := c.Register(ctx, username, password)
	if err != nil {
		t.Fatalf("Register(%q): %v", username, err)
	}
	if want := strings.ToLower(username); got != want {
		t.Fatalf("Register(%q): got username %q, want %q", username, got, want)
	}
	return c, n.ID()
}

// login opens a session that is closed when the test ends.
func login(ctx context.Context, t *testing.T, c *client.Client, addrs []ma.Multiaddr) *client.Session {
	t.Helper()
	s, err := c.Login(ctx, addrs)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustAddrs(t *testing.T, ss ...string) []ma.Multiaddr {
	t.Helper()
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("multiaddr %q: %v", s, err)
		}
		out = append(out, a)
	}
	return out
}

func addrsEqual(a, b []ma.Multiaddr) bool {
	return slices.EqualFunc(a, b, func(x, y ma.Multiaddr) bool { return x.Equal(y) })
}

// nextUpdate waits for the next push on s.
func nextUpdate(ctx context.Context, t *testing.T, s *client.Session) client.Update {
	t.Helper()
	select {
	case u, ok := <-s.Updates():
		if !ok {
			t.Fatalf("session of %s ended while waiting for an update: %v", s.Username, s.Err())
		}
		return u
	case <-ctx.Done():
		t.Fatalf("session of %s: no update: %v", s.Username, ctx.Err())
	}
	panic("unreachable")
}

// nextPresence waits for the next presence push on s, skipping contact
// events.
func nextPresence(ctx context.Context, t *testing.T, s *client.Session) client.Presence {
	t.Helper()
	for {
		if u := nextUpdate(ctx, t, s); u.Presence != nil {
			return *u.Presence
		}
	}
}

// makeContacts makes a and b contacts through a request and an accept.
func makeContacts(ctx context.Context, t testing.TB, a *client.Client, b *client.Client, bName string, aName string) {
	t.Helper()
	if acc, err := a.RequestContact(ctx, bName); err != nil || acc {
		t.Fatalf("RequestContact(%s): got %v, %v, want false, nil", bName, acc, err)
	}
	if err := b.AcceptContact(ctx, aName); err != nil {
		t.Fatalf("AcceptContact(%s): %v", aName, err)
	}
}

// statusErr extracts the server's status error from err.
func statusErr(t *testing.T, err error) *rendezvous.StatusError {
	t.Helper()
	var se *rendezvous.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("got error %v (%T), want a *rendezvous.StatusError", err, err)
	}
	return se
}

func TestRegister(t *testing.T) {
	ts := startServer(t)
	ctx := testContext(t)

	register(ctx, t, ts, "Alice", "password1")

	// Same name in another case, from another device.
	c2, _ := newClient(t, ts)
	_, err := c2.Register(ctx, "ALICE", "password2")
	if !errors.Is(err, rendezvous.ErrUsernameTaken) {
		t.Errorf("Register(ALICE) after Register(Alice): got %v, want ErrUsernameTaken", err)
	}

	tests := []struct {
		name     string
		username string
		password string
		wantMsg  string // part of the server's message
	}{
		{"too short", "al", "password1", "3 to 32"},
		{"leading underscore", "_alice", "password1", "3 to 32"},
		{"bad char", "al ice", "password1", "3 to 32"},
		{"unicode", "ålice", "password1", "3 to 32"},
		{"too long", strings.Repeat("a", 33), "password1", "3 to 32"},
		{"short password", "dave", "short", "8 to 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, ts)
			_, err := c.Register(ctx, tt.username, tt.password)
			if !errors.Is(err, rendezvous.ErrBadRequest) {
				t.Fatalf("Register(%q): got %v, want ErrBadRequest", tt.username, err)
			}
			se := statusErr(t, err)
			if se.Status != pb.Status_STATUS_BAD_REQUEST {
				t.Errorf("status: got %v, want %v", se.Status, pb.Status_STATUS_BAD_REQUEST)
			}
			if !strings.Contains(se.Message, tt.wantMsg) {
				t.Errorf("message: got %q, want it to contain %q", se.Message, tt.wantMsg)
			}
		})
	}

	// The refused device is still free: it can register a valid name.
	c3, _ := newClient(t, ts)
	if _, err := c3.Register(ctx, "_bad", "password1"); !errors.Is(err, rendezvous.ErrBadRequest) {
		t.Fatalf("Register(_bad): got %v, want ErrBadRequest", err)
	}
	if got, err := c3.Register(ctx, "Bob", "password1"); err != nil || got != "bob" {
		t.Errorf("Register(Bob) after a refused request: got %q, %v, want \"bob\", nil", got, err)
	}

	// A device enrolled to one account cannot register another.
	c1 := register(ctx, t, ts, "carol", "password1")
	if _, err := c1.Register(ctx, "carol2", "password1"); !errors.Is(err, rendezvous.ErrDeviceTaken) {
		t.Errorf("second Register from one device: got %v, want ErrDeviceTaken", err)
	}
}

func TestEnrol(t *testing.T) {
	ts := startServer(t)
	ctx := testContext(t)
	register(ctx, t, ts, "alice", "password1")

	dev, _ := newClient(t, ts)

	_, errWrongPw := dev.Enrol(ctx, "alice", "password2")
	if !errors.Is(errWrongPw, rendezvous.ErrBadCredentials) {
		t.Fatalf("Enrol with wrong password: got %v, want ErrBadCredentials", errWrongPw)
	}
	_, errNoUser := dev.Enrol(ctx, "nobody", "password1")
	if !errors.Is(errNoUser, rendezvous.ErrBadCredentials) {
		t.Fatalf("Enrol as unknown user: got %v, want ErrBadCredentials", errNoUser)
	}
	_, errBadName := dev.Enrol(ctx, "_x", "password1")
	if !errors.Is(errBadName, rendezvous.ErrBadCredentials) {
		t.Fatalf("Enrol with invalid username: got %v, want ErrBadCredentials", errBadName)
	}
	// No username enumeration: the three refusals look the same.
	want := statusErr(t, errWrongPw)
	for name, err := range map[string]error{"unknown user": errNoUser, "invalid username": errBadName} {
		got := statusErr(t, err)
		if got.Status != want.Status || got.Code != want.Code || got.Message != want.Message {
			t.Errorf("%s: got %v %q %q, want %v %q %q (same as wrong password)", name, got.Status, got.Code, got.Message, want.Status, want.Code, want.Message)
		}
	}

	// Not yet enrolled: login refused.
	if _, err := dev.Login(ctx, nil); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
		t.Fatalf("Login before enrolment: got %v, want ErrDeviceNotEnrolled", err)
	}

	got, err := dev.Enrol(ctx, "ALICE", "password1")
	if err != nil {
		t.Fatalf("Enrol with correct password: %v", err)
	}
	if got != "alice" {
		t.Errorf("Enrol: got username %q, want %q", got, "alice")
	}
	// Enrolling again is a no-op.
	if _, err := dev.Enrol(ctx, "alice", "password1"); err != nil {
		t.Errorf("second Enrol of the same device: got %v, want nil", err)
	}
	s := login(ctx, t, dev, nil)
	if s.Username != "alice" {
		t.Errorf("Login of enrolled device: got username %q, want %q", s.Username, "alice")
	}

	// A device of another account cannot be enrolled to alice.
	bob := register(ctx, t, ts, "bob", "password1")
	if _, err := bob.Enrol(ctx, "alice", "password1"); !errors.Is(err, rendezvous.ErrDeviceTaken) {
		t.Errorf("Enrol of bob's device to alice: got %v, want ErrDeviceTaken", err)
	}
}

func TestLoginNotEnrolled(t *testing.T) {
	ts := startServer(t)
	ctx := testContext(t)
	register(ctx, t, ts, "alice", "password1")

	c, _ := newClient(t, ts)
	s, err := c.Login(ctx, nil)
	if err == nil {
		s.Close()
		t.Fatal("Login from an un-enrolled device: got a session, want ErrDeviceNotEnrolled")
	}
	if !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
		t.Fatalf("Login from an un-enrolled device: got %v, want ErrDeviceNotEnrolled", err)
	}
	if errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Errorf("Login from an un-enrolled device: got %v, which also matches ErrBadCredentials", err)
	}
	// An un-enrolled device cannot add contacts either.
	if _, err := c.RequestContact(ctx, "alice"); !errors.Is(err, rendezvous.ErrDeviceNotEnrolled) {
		t.Errorf("RequestContact from an un-enrolled device: got %v, want ErrDeviceNotEnrolled", err)
	}
}

func TestPresence(t *testing.T) {
	ts := startServer(t)
	ctx := testContext(t)
	start := time.Now()

	alice, aliceID := registerDevice(ctx, t, ts, "alice", "password1")
	bob, bobID := registerDevice(ctx, t, ts, "bob", "password1")
	carol := register(ctx, t, ts, "carol", "password1")

	aliceAddrs := mustAddrs(t, "/ip4/192.0.2.1/tcp/4001", "/ip4/192.0.2.1/udp/4001/quic-v1")
	bobAddrs := mustAddrs(t, "/ip4/198.51.100.2/tcp/4002")
	bobNewAddrs := mustAddrs(t, "/ip4/198.51.100.3/tcp/4003", "/ip4/198.51.100.3/udp/4003/quic-v1")

	aliceS := login(ctx, t, alice, aliceAddrs)
	bobS := login(ctx, t, bob, bobAddrs)
	carolS := login(ctx, t, carol, mustAddrs(t, "/ip4/203.0.113.3/tcp/4003"))
	for _, s := range []*client.Session{aliceS, bobS, carolS} {
		if len(s.Contacts) != 0 {
			t.Errorf("%s's login snapshot: got %d contacts, want 0", s.Username, len(s.Contacts))
		}
	}

	// Carol asks for alice, who never asks back: they are not contacts.
	if acc, err := carol.RequestContact(ctx, "alice"); err != nil || acc {
		t.Fatalf("carol RequestContact(alice): got %v, %v, want false, nil", acc, err)
	}
	if acc, err := alice.RequestContact(ctx, "bob"); err != nil || acc {
		t.Fatalf("alice RequestContact(bob): got %v, %v, want false, nil", acc, err)
	}
	if acc, err := bob.RequestContact(ctx, "Alice"); err != nil || !acc {
		t.Fatalf("bob RequestContact(Alice): got %v, %v, want true (mutual), nil", acc, err)
	}

	checkOnline := func(got client.Presence, username string, id peer.ID, addrs []ma.Multiaddr) {
		t.Helper()
		if got.Username != username || !got.Online || got.Peer != id {
			t.Errorf("presence: got %q online=%v peer=%s, want %q online=true peer=%s",
				got.Username, got.Online, got.Peer, username, id)
		}
		if !addrsEqual(got.Addrs, addrs) {
			t.Errorf("presence of %s: got addrs %v, want %v", username, got.Addrs, addrs)
		}
	}

	// Accepting pushes each side's presence to the other.
	checkOnline(nextPresence(ctx, t, aliceS), "bob", bobID, bobAddrs)
	checkOnline(nextPresence(ctx, t, bobS), "alice", aliceID, aliceAddrs)

	// An address update reaches alice.
	if err := bobS.UpdateAddrs(bobNewAddrs); err != nil {
		t.Fatalf("bob UpdateAddrs: %v", err)
	}
	checkOnline(nextPresence(ctx, t, aliceS), "bob", bobID, bobNewAddrs)

	// Bob logs out: alice sees him offline with a last-seen time.
	if err := bobS.Close(); err != nil {
		t.Fatalf("bob Session.Close: %v", err)
	}
	off := nextPresence(ctx, t, aliceS)
	if off.Username != "bob" || off.Online {
		t.Errorf("after bob's Close: got %q online=%v, want \"bob\" online=false", off.Username, off.Online)
	}
	if off.Peer != "" || len(off.Addrs) != 0 {
		t.Errorf("offline presence: got peer %q addrs %v, want none", off.Peer, off.Addrs)
	}
	if off.LastSeen.IsZero() {
		t.Errorf("offline presence: got zero LastSeen, want the logout time")
	} else if lo, hi := start.Add(-time.Second), time.Now().Add(time.Second); off.LastSeen.Before(lo) || off.LastSeen.After(hi) {
		t.Errorf("offline presence: got LastSeen %v, want between %v and %v", off.LastSeen, lo, hi)
	}
	select {
	case <-bobS.Done():
	default:
		t.Errorf("bob's Done: got open after Close, want closed")
	}

	// Bob logs in again: his snapshot shows alice, and alice sees him back.
	bobS2 := login(ctx, t, bob, bobAddrs)
	if len(bobS2.Contacts) != 1 {
		t.Fatalf("bob's second login snapshot: got %d contacts, want 1", len(bobS2.Contacts))
	}
	checkOnline(bobS2.Contacts[0], "alice", aliceID, aliceAddrs)
	checkOnline(nextPresence(ctx, t, aliceS), "bob", bobID, bobAddrs)

	// No other presence was pushed to anyone, and nothing ever to carol.
	for _, s := range []*client.Session{aliceS, bobS2, carolS} {
	drain:
		for {
			select {
			case u, ok := <-s.Updates():
				if !ok {
					t.Errorf("%s's session: got ended (%v), want alive", s.Username, s.Err())
					break drain
				}
				if u.Presence != nil || s == carolS {
					t.Errorf("%s's session: got unexpected update %+v %+v, want none", s.Username, u.Presence, u.Contact)
				}
			default:
				break drain
			}
		}
	}
	if err := carolS.Err(); err != nil {
		t.Errorf("carol's session: got error %v, want alive", err)
	}
}

func TestSupernodeDirectory(t *testing.T) {
	// Entries must outlive the test on a loaded machine: each candidate
	// announces once.
	ts := startServer(t, func(c *server.Config) { c.SupernodeTTL = 2 * time.Minute })
	ctx := testContext(t)

	busy, busyNode := newClient(t, ts)
	idle, idleNode := newClient(t, ts)
	observer, _ := newClient(t, ts)

	if got, err := observer.Supernodes(ctx, 0, nil); err != nil || len(got) != 0 {
		t.Fatalf("Supernodes before any announcement: got %v, %v, want none", got, err)
	}

	a, err := busy.AnnounceSupernode(ctx, busyNode.Addrs(), &pb.SupernodeLoad{Reservations: 5})
	if err != nil {
		t.Fatalf("AnnounceSupernode(busy): %v", err)
	}
	if want := 2 * time.Minute; a.TTL != want {
		t.Errorf("AnnounceSupernode TTL: got %v, want %v", a.TTL, want)
	}
	if !a.Active {
		t.Errorf("the only candidate is a standby; want it active (fewer candidates than MinActive)")
	}
	if _, err := idle.AnnounceSupernode(ctx, idleNode.Addrs(), &pb.SupernodeLoad{Reservations: 1}); err != nil {
		t.Fatalf("AnnounceSupernode(idle): %v", err)
	}

	check := func(max int, rtts map[peer.ID]time.Duration, want ...*node.Node) {
		t.Helper()
		got, err := observer.Supernodes(ctx, max, rtts)
		if err != nil {
			t.Fatalf("Supernodes(%d): %v", max, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Supernodes(%d): got %d entries %v, want %d", max, len(got), got, len(want))
		}
		for i, w := range want {
			if got[i].ID != w.ID() {
				t.Errorf("Supernodes(%d)[%d]: got %s, want %s", max, i, got[i].ID, w.ID())
			}
			if !addrsEqual(got[i].Addrs, w.Addrs()) {
				t.Errorf("Supernodes(%d)[%d] addrs: got %v, want %v", max, i, got[i].Addrs, w.Addrs())
			}
		}
	}
	check(0, nil, idleNode, busyNode)
	check(1, nil, idleNode)
	// Equally utilised (both under 10%): the client's nearer one first.
	check(0, map[peer.ID]time.Duration{busyNode.ID(): 10 * time.Millisecond, idleNode.ID(): 80 * time.Millisecond}, busyNode, idleNode)

	for _, tt := range []struct {
		name  string
		addrs []ma.Multiaddr
	}{
		{"nil addrs", nil},
		{"empty addrs", []ma.Multiaddr{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newClient(t, ts)
			_, err := c.AnnounceSupernode(ctx, tt.addrs, &pb.SupernodeLoad{})
			if !errors.Is(err, rendezvous.ErrBadRequest) {
				t.Fatalf("AnnounceSupernode with %s: got %v, want ErrBadRequest", tt.name, err)
			}
			if msg := statusErr(t, err).Message; msg == "" {
				t.Errorf("AnnounceSupernode with %s: got empty message, want an explanation", tt.name)
			}
		})
	}
	check(0, nil, idleNode, busyNode) // the refused announcements are not listed

	tooMany := make(map[peer.ID]time.Duration)
	for range rendezvous.MaxRTTHints + 1 {
		tooMany[newNode(t).ID()] = time.Millisecond
	}
	// The client library sends at most MaxRTTHints of them.
	if _, err := observer.Supernodes(ctx, 0, tooMany); err != nil {
		t.Errorf("Supernodes with %d hints: %v (the client should have trimmed them)", len(tooMany), err)
	}

	// A renewed announcement replaces the load.
	if _, err := busy.AnnounceSupernode(ctx, busyNode.Addrs(), &pb.SupernodeLoad{Reservations: 0}); err != nil {
		t.Fatalf("AnnounceSupernode(busy) renewal: %v", err)
	}
	check(0, nil, busyNode, idleNode)

	// A supernode that leaves is not handed out any more.
	if err := busy.LeaveSupernode(ctx); err != nil {
		t.Fatalf("LeaveSupernode: %v", err)
	}
	check(0, nil, idleNode)
}

func TestSupernodeDirectoryTrusted(t *testing.T) {
	relay := newNode(t)
	ts := startServer(t, func(c *server.Config) {
		c.OpenDirectory = false
		c.TrustedSupernodes = []peer.ID{relay.ID()}
	})
	ctx := testContext(t)

	trusted := client.New(relay, ts.info())
	if _, err := trusted.AnnounceSupernode(ctx, relay.Addrs(), nil); err != nil {
		t.Fatalf("a trusted relay announces: %v", err)
	}
	stranger, strangerNode := newClient(t, ts)
	_, err := stranger.AnnounceSupernode(ctx, strangerNode.Addrs(), nil)
	if !errors.Is(err, rendezvous.ErrNotTrusted) {
		t.Fatalf("an unknown peer announces: got %v, want ErrNotTrusted", err)
	}
	// An enrolled device may volunteer, but it is not believed when it
	// claims to be a dedicated relay with a vast capacity: that would
	// draw every client to it and keep others from being promoted.
	if _, err := stranger.Register(ctx, "volunteer", "volunteer-password"); err != nil {
		t.Fatal(err)
	}
	boast := &pb.SupernodeLoad{Dedicated: true, MaxReservations: 1 << 30, Reservations: 3}
	if _, err := stranger.AnnounceSupernode(ctx, strangerNode.Addrs(), boast); err != nil {
		t.Fatalf("an enrolled device volunteers: %v", err)
	}
	got, err := stranger.Supernodes(ctx, 0, nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("Supernodes: got %v, %v, want the relay and the volunteer", got, err)
	}
	for _, e := range ts.srv.Supernodes() {
		if e.Peer == strangerNode.ID() && (e.Capacity != server.DefaultElection().DefaultCapacity || e.Reservations != 3) {
			t.Errorf("the volunteer's claims were believed: %+v", e)
		}
	}
	// Announcements are rate limited per peer.
	var lerr error
	for range 20 {
		if _, lerr = stranger.AnnounceSupernode(ctx, strangerNode.Addrs(), nil); lerr != nil {
			break
		}
	}
	if !errors.Is(lerr, rendezvous.ErrRateLimited) {
		t.Errorf("20 announcements at once: got %v, want ErrRateLimited", lerr)
	}
}

// frame prefixes payload with its uvarint length, as package wire does.
func frame(payload []byte) []byte {
	return append(protowire.AppendVarint(nil, uint64(len(payload))), payload...)
}

func marshalFrame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return frame(b)
}

func TestMalformedFrames(t *testing.T) {
	ts := startServer(t)
	ctx := testContext(t)
	raw := newNode(t)
	raw.Peerstore().AddAddrs(ts.node.ID(), ts.node.Addrs(), time.Hour)

	addr := ma.StringCast("/ip4/192.0.2.1/tcp/4001").Bytes()
	tooManyAddrs := make([][]byte, rendezvous.MaxAddrs+1)
	for i := range tooManyAddrs {
		tooManyAddrs[i] = addr
	}

	tests := []struct {
		name    string
		data    []byte
		wantMsg string // part of the server's message
	}{
		{
			name:    "oversized length prefix",
			data:    append(protowire.AppendVarint(nil, rendezvous.MaxDepositSize+1), "junk junk junk"...),
			wantMsg: "exceeds size limit",
		},
		{
			// Only a deposit may be larger than MaxRequestSize.
			name: "oversized request that is not a deposit",
			data: marshalFrame(t, &pb.Request{Body: &pb.Request_Register{
				Register: &pb.RegisterRequest{Username: "dave", Password: strings.Repeat("p", rendezvous.MaxRequestSize)},
			}}),
			wantMsg: "exceeds size limit",
		},
		{
			name:    "huge length prefix",
			data:    append(protowire.AppendVarint(nil, 1<<62), "junk"...),
			wantMsg: "exceeds size limit",
		},
		{
			name:    "invalid protobuf",
			data:    frame([]byte{0x0a, 0x05, 0x61}),
			wantMsg: "malformed",
		},
		{
			name:    "invalid wire type",
			data:    frame([]byte{0x0f, 0x01}),
			wantMsg: "malformed",
		},
		{
			// proto3 strings must be UTF-8, so the client library cannot
			// send this; a hostile peer can.
			name: "invalid UTF-8 password",
			data: frame(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
				protowire.AppendString(protowire.AppendTag(
					protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "dave"),
					2, protowire.BytesType), "passw\xffrd"))),
			wantMsg: "malformed",
		},
		{
			name:    "empty request",
			data:    marshalFrame(t, &pb.Request{}),
			wantMsg: "empty or unknown",
		},
		{
			name:    "unknown field only",
			data:    frame(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)),
			wantMsg: "empty or unknown",
		},
		{
			name: "33 supernode addresses",
			data: marshalFrame(t, &pb.Request{Body: &pb.Request_AnnounceSupernode{
				AnnounceSupernode: &pb.AnnounceSupernodeRequest{Addrs: tooManyAddrs},
			}}),
			wantMsg: fmt.Sprintf("at most %d addresses", rendezvous.MaxAddrs),
		},
		{
			name: "invalid multiaddr",
			data: marshalFrame(t, &pb.Request{Body: &pb.Request_AnnounceSupernode{
				AnnounceSupernode: &pb.AnnounceSupernodeRequest{Addrs: [][]byte{{0xff, 0xff, 0xff}}},
			}}),
			wantMsg: "invalid multiaddr",
		},
		{
			name: "address too long",
			data: marshalFrame(t, &pb.Request{Body: &pb.Request_AnnounceSupernode{
				AnnounceSupernode: &pb.AnnounceSupernodeRequest{Addrs: [][]byte{make([]byte, rendezvous.MaxAddrLen+1)}},
			}}),
			wantMsg: "longer than",
		},
		{
			name: "update-addrs outside a session",
			data: marshalFrame(t, &pb.Request{Body: &pb.Request_UpdateAddrs{
				UpdateAddrs: &pb.UpdateAddrsRequest{},
			}}),
			wantMsg: "only valid in a session",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := raw.NewStream(ctx, ts.node.ID(), rendezvous.ProtocolID)
			if err != nil {
				t.Fatalf("NewStream: %v", err)
			}
			defer st.Reset()
			if dl, ok := ctx.Deadline(); ok {
				_ = st.SetDeadline(dl)
			}
			if _, err := st.Write(tt.data); err != nil {
				t.Fatalf("write: %v", err)
			}
			_ = st.CloseWrite()
			r := wire.NewReader(st, rendezvous.MaxResponseSize)
			resp := new(pb.Response)
			if err := r.Read(resp); err != nil {
				t.Fatalf("read response: got %v, want a response", err)
			}
			if resp.Status != pb.Status_STATUS_BAD_REQUEST {
				t.Errorf("status: got %v, want %v", resp.Status, pb.Status_STATUS_BAD_REQUEST)
			}
			if resp.Message == "" {
				t.Errorf("message: got empty, want an explanation")
			} else if !strings.Contains(resp.Message, tt.wantMsg) {
				t.Errorf("message: got %q, want it to contain %q", resp.Message, tt.wantMsg)
			}
			if resp.Body != nil {
				t.Errorf("body: got %v, want none", resp.Body)
			}
			// The server closes the stream after the error.
			if err := r.Read(new(pb.Response)); err == nil {
				t.Errorf("second read: got another frame, want the stream closed")
			}
		})
	}

	// The server survived: a normal request on a new stream still works,
	// from the same peer and from another one.
	if _, err := client.New(raw, ts.info()).Register(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Register from the raw peer after malformed frames: %v", err)
	}
	register(ctx, t, ts, "bob", "password1")
}

func TestCloseEndsSessions(t *testing.T) {
	ts := startServer(t)
	ctx := testContext(t)

	alice := register(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")
	aliceS := login(ctx, t, alice, mustAddrs(t, "/ip4/192.0.2.1/tcp/4001"))
	bobS := login(ctx, t, bob, nil)
	makeContacts(ctx, t, alice, bob, "bob", "alice")

	closed := make(chan error, 1)
	go func() { closed <- ts.srv.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Server.Close: got %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatalf("Server.Close: did not return: %v", ctx.Err())
	}

	for _, s := range []*client.Session{aliceS, bobS} {
		select {
		case <-s.Done():
		case <-ctx.Done():
			t.Fatalf("%s's session: Done not closed after Server.Close: %v", s.Username, ctx.Err())
		}
		if s.Err() == nil {
			t.Errorf("%s's session: got nil Err after it ended, want the reason", s.Username)
		}
		// Updates is closed too, after any pushes still queued.
		for range s.Updates() {
		}
		if err := s.UpdateAddrs(nil); err == nil {
			t.Errorf("%s's UpdateAddrs after the end: got nil, want an error", s.Username)
		}
	}

	if err := ts.srv.Close(); err != nil {
		t.Errorf("second Server.Close: got %v, want nil", err)
	}
	// The service is gone: new requests fail.
	if _, err := bob.RequestContact(ctx, "alice"); err == nil {
		t.Errorf("RequestContact after Server.Close: got nil error, want failure")
	}
}

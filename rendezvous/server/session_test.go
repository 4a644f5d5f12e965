package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/internal/tstest"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
)

// noLimits turns the abuse limits off, for tests that check passwords or
// log in more often than the defaults allow.
func noLimits(c *server.Config) { c.Limits = server.NoLimits() }

// awaitPresence reads pushes on s until a presence of username that
// satisfies ok (described by what), skipping everything else.
func awaitPresence(ctx context.Context, t *testing.T, s *client.Session, username, what string, ok func(client.Presence) bool) client.Presence {
	t.Helper()
	for {
		select {
		case u, open := <-s.Updates():
			if !open {
				t.Fatalf("%s's session ended while waiting for %s presence of %s: %v", s.Username, what, username, s.Err())
			}
			if u.Presence != nil && u.Presence.Username == username && ok(*u.Presence) {
				return *u.Presence
			}
		case <-ctx.Done():
			t.Fatalf("%s's session: no %s presence of %s: %v", s.Username, what, username, ctx.Err())
		}
	}
}

// awaitOnline reads pushes on s until each of usernames was pushed as
// online, in any order (presence of different users may come in any
// order), skipping everything else.
func awaitOnline(ctx context.Context, t *testing.T, s *client.Session, usernames ...string) {
	t.Helper()
	missing := make(map[string]bool, len(usernames))
	for _, u := range usernames {
		missing[u] = true
	}
	for len(missing) > 0 {
		select {
		case u, open := <-s.Updates():
			if !open {
				t.Fatalf("%s's session ended while waiting for %v online: %v", s.Username, usernames, s.Err())
			}
			if u.Presence != nil && u.Presence.Online {
				delete(missing, u.Presence.Username)
			}
		case <-ctx.Done():
			t.Fatalf("%s's session: no online presence of %v: %v", s.Username, slices.Collect(maps.Keys(missing)), ctx.Err())
		}
	}
}

// awaitContactEvent reads pushes on s until want. Every push before it
// is passed to forbid, which returns why that push must not have come
// (or "" if it may); forbid may be nil.
func awaitContactEvent(ctx context.Context, t *testing.T, s *client.Session, want client.ContactEvent, forbid func(client.Update) string) {
	t.Helper()
	for {
		select {
		case u, open := <-s.Updates():
			if !open {
				t.Fatalf("%s's session ended while waiting for contact event %s %s: %v", s.Username, want.Change, want.Username, s.Err())
			}
			if u.Contact != nil && *u.Contact == want {
				return
			}
			if forbid != nil {
				if why := forbid(u); why != "" {
					t.Errorf("%s's session: got %s before %s %s, want no %s", s.Username, describe(u), want.Change, want.Username, why)
				}
			}
		case <-ctx.Done():
			t.Fatalf("%s's session: no contact event %s %s: %v", s.Username, want.Change, want.Username, ctx.Err())
		}
	}
}

// about forbids every push that concerns username.
func about(username string) func(client.Update) string {
	return func(u client.Update) string {
		switch {
		case u.Presence != nil && u.Presence.Username == username:
			return "presence of " + username
		case u.Contact != nil && u.Contact.Username == username:
			return "contact event about " + username
		}
		return ""
	}
}

// presenceOf forbids presence pushes of username.
func presenceOf(username string) func(client.Update) string {
	return func(u client.Update) string {
		if u.Presence != nil && u.Presence.Username == username {
			return "presence of " + username
		}
		return ""
	}
}

func describe(u client.Update) string {
	switch {
	case u.Presence != nil:
		return fmt.Sprintf("presence of %s (online=%v, %d devices)", u.Presence.Username, u.Presence.Online, len(u.Presence.Devices))
	case u.Contact != nil:
		return fmt.Sprintf("contact event %s %s", u.Contact.Change, u.Contact.Username)
	}
	return "empty update"
}

var pokes atomic.Int32

// poke registers a fresh user that asks username to become a contact,
// and returns the event username's sessions get for it.
//
// It is a barrier for contact events: they are handled in order per
// receiving user, so a contact event due to username before poke arrives
// before the returned one. For presence pushes it is one only together
// with a witness: a contact of the changed user whose name sorts after
// username has received the push (the server pushes to contacts in name
// order, one after the other, into per-session FIFO queues).
func poke(ctx context.Context, t *testing.T, ts *testServer, username string) client.ContactEvent {
	t.Helper()
	name := fmt.Sprintf("poke%d", pokes.Add(1))
	c := register(ctx, t, ts, name, "password1")
	if acc, err := c.RequestContact(ctx, username); err != nil || acc {
		t.Fatalf("%s RequestContact(%s): got %v, %v, want false, nil", name, username, acc, err)
	}
	return client.ContactEvent{Change: client.ContactRequested, Username: name}
}

// sessionEnd waits for s to end and returns why.
func sessionEnd(ctx context.Context, t *testing.T, s *client.Session) error {
	t.Helper()
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatalf("%s's session: still alive, want it ended: %v", s.Username, ctx.Err())
	}
	for range s.Updates() { // closed after Done
	}
	return s.Err()
}

// deviceIDs lists the online devices of a presence.
func deviceIDs(p client.Presence) []peer.ID {
	out := make([]peer.ID, 0, len(p.Devices))
	for _, d := range p.Devices {
		out = append(out, d.ID)
	}
	return out
}

// rawLogin opens a session for the device of n by hand: it sends a login
// request and reads the login response, and leaves the rest of the
// protocol to the caller. The stream is reset when the test ends.
func rawLogin(ctx context.Context, t *testing.T, ts *testServer, n *node.Node) (network.Stream, *wire.Reader) {
	t.Helper()
	n.Peerstore().AddAddrs(ts.node.ID(), ts.node.Addrs(), time.Hour)
	st, err := n.NewStream(ctx, ts.node.ID(), rendezvous.ProtocolID)
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	t.Cleanup(func() { _ = st.Reset() })
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	req := &pb.Request{Body: &pb.Request_Login{Login: &pb.LoginRequest{}}}
	if err := wire.Write(st, req, rendezvous.MaxRequestSize); err != nil {
		t.Fatalf("write login request: %v", err)
	}
	r := wire.NewReader(st, rendezvous.MaxResponseSize)
	resp := new(pb.Response)
	if err := r.Read(resp); err != nil {
		t.Fatalf("read login response: %v", err)
	}
	if resp.GetStatus() != pb.Status_STATUS_OK || resp.GetLogin() == nil {
		t.Fatalf("login response: got status %v %q body %T, want OK with a login result", resp.GetStatus(), resp.GetMessage(), resp.GetBody())
	}
	return st, r
}

func TestKeepaliveSilentClientGoesOffline(t *testing.T) {
	const keepalive = 300 * time.Millisecond
	// The server notices at 3×keepalive; the margin is for the store, the
	// fan-out and a loaded machine, and is short of a fourth keepalive.
	const bound = 3*keepalive + 250*time.Millisecond
	ts := startServer(t, noLimits, func(c *server.Config) { c.Keepalive = keepalive })
	ctx := testContext(t)

	alice := register(ctx, t, ts, "alice", "password1")
	bob, bobNode := newClient(t, ts)
	if _, err := bob.Register(ctx, "bob", "password1"); err != nil {
		t.Fatalf("Register(bob): %v", err)
	}
	makeContacts(ctx, t, alice, bob, "bob", "alice")
	aliceS := login(ctx, t, alice, nil)

	// Bob logs in and then says nothing, without closing anything: a
	// client that vanished (power loss, NAT mapping gone).
	// The server starts counting between these two times.
	sent := time.Now()
	st, r := rawLogin(ctx, t, ts, bobNode)
	loggedIn := time.Now()
	awaitPresence(ctx, t, aliceS, "bob", "online", func(p client.Presence) bool { return p.Online && p.HasDevice(bobNode.ID()) })

	off := awaitPresence(ctx, t, aliceS, "bob", "offline", func(p client.Presence) bool { return !p.Online })
	offAt := time.Now()
	t.Logf("a silent client was shown offline %v after its login response (%v after its request; keepalive %v, 3×keepalive %v)",
		offAt.Sub(loggedIn), offAt.Sub(sent), keepalive, 3*keepalive)
	if took := offAt.Sub(sent); took < 3*keepalive {
		t.Errorf("silent client shown offline %v after its login request, want no sooner than 3×keepalive = %v", took, 3*keepalive)
	}
	if took := offAt.Sub(loggedIn); took > bound {
		t.Errorf("silent client shown offline %v after its login response, want within %v", took, bound)
	}
	if off.LastSeen.IsZero() {
		t.Errorf("offline presence: got zero LastSeen, want when the session ended")
	}

	// The server dropped the stream.
	_ = st.SetReadDeadline(time.Now().Add(testTimeout))
	for {
		if err := r.Read(new(pb.Response)); err != nil {
			break
		}
	}
	devs, err := alice.Contacts(ctx)
	if err != nil {
		t.Fatalf("alice Contacts: %v", err)
	}
	if len(devs.Accepted) != 1 || devs.Accepted[0].Online {
		t.Errorf("alice's contacts after bob vanished: got %+v, want bob offline", devs.Accepted)
	}
}

func TestKeepalivePingingClientStaysOnline(t *testing.T) {
	const keepalive = 200 * time.Millisecond
	ts := startServer(t, noLimits, func(c *server.Config) { c.Keepalive = keepalive })
	ctx := testContext(t)

	alice := register(ctx, t, ts, "alice", "password1")
	bob, bobID := registerDevice(ctx, t, ts, "bob", "password1")
	makeContacts(ctx, t, alice, bob, "bob", "alice")
	aliceS := login(ctx, t, alice, nil)
	bobS := login(ctx, t, bob, nil)
	awaitPresence(ctx, t, aliceS, "bob", "online", func(p client.Presence) bool { return p.Online && p.HasDevice(bobID) })

	// Bob's client pings every keepalive; watch for more than three.
	window := time.NewTimer(5 * keepalive)
	defer window.Stop()
watch:
	for {
		select {
		case u, ok := <-aliceS.Updates():
			if !ok {
				t.Fatalf("alice's session ended: %v", aliceS.Err())
			}
			if u.Presence != nil && u.Presence.Username == "bob" && !u.Presence.Online {
				t.Fatalf("bob shown offline while his client pings, want online for %v", 5*keepalive)
			}
		case <-bobS.Done():
			t.Fatalf("bob's session ended while pinging: %v", bobS.Err())
		case <-window.C:
			break watch
		}
	}
	if err := bobS.Err(); err != nil {
		t.Errorf("bob's session after %v: got %v, want alive", 5*keepalive, err)
	}
	book, err := alice.Contacts(ctx)
	if err != nil {
		t.Fatalf("alice Contacts: %v", err)
	}
	if len(book.Accepted) != 1 || !book.Accepted[0].Online {
		t.Errorf("alice's contacts after %v: got %+v, want bob online", 5*keepalive, book.Accepted)
	}
}

func TestShutdownGoAway(t *testing.T) {
	const spread = 2 * time.Second
	const n = 5
	ts := startServer(t, noLimits, func(c *server.Config) { c.GoAwaySpread = spread })
	ctx := testContext(t)

	var sessions []*client.Session
	for i := range n {
		c := register(ctx, t, ts, fmt.Sprintf("user%d", i), "password1")
		sessions = append(sessions, login(ctx, t, c, nil))
	}

	done := make(chan error, 1)
	go func() { done <- ts.srv.Shutdown(ctx) }()

	var after []time.Duration
	for _, s := range sessions {
		err := sessionEnd(ctx, t, s)
		if !errors.Is(err, rendezvous.ErrUnavailable) {
			t.Errorf("%s's session: got %v, want an error matching ErrUnavailable", s.Username, err)
		}
		var ga *client.GoAwayError
		if !errors.As(err, &ga) {
			t.Errorf("%s's session: got %v (%T), want a *client.GoAwayError", s.Username, err, err)
			continue
		}
		if ga.RetryAfter < 0 || ga.RetryAfter >= spread {
			t.Errorf("%s's GoAway: got RetryAfter %v, want in [0, %v)", s.Username, ga.RetryAfter, spread)
		}
		after = append(after, ga.RetryAfter)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: got %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatalf("Shutdown did not return: %v", ctx.Err())
	}
	t.Logf("GoAway RetryAfter values: %v", after)
	if len(after) == n {
		lo, hi := slices.Min(after), slices.Max(after)
		if lo == hi {
			t.Errorf("GoAway RetryAfter: got %v for all %d sessions, want them spread over %v", lo, n, spread)
		} else if hi-lo < spread/2 {
			t.Errorf("GoAway RetryAfter: got %v, spread over %v, want spread over at least %v", after, hi-lo, spread/2)
		}
	}
}

func TestSecondLoginReplacesFirst(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)

	alice, aliceID := registerDevice(ctx, t, ts, "alice", "password1")
	bob := register(ctx, t, ts, "bob", "password1")
	makeContacts(ctx, t, alice, bob, "bob", "alice")
	bobS := login(ctx, t, bob, nil)

	addrs1 := mustAddrs(t, "/ip4/192.0.2.1/tcp/4001")
	addrs2 := mustAddrs(t, "/ip4/192.0.2.2/tcp/4002")
	first := login(ctx, t, alice, addrs1)
	awaitPresence(ctx, t, bobS, "alice", "online", func(p client.Presence) bool { return p.Online && addrsEqual(p.Addrs, addrs1) })

	second := login(ctx, t, alice, addrs2)
	if err := sessionEnd(ctx, t, first); err == nil {
		t.Errorf("first session: got nil Err after it ended, want why")
	}
	p := awaitPresence(ctx, t, bobS, "alice", "online from the second login", func(p client.Presence) bool {
		return p.Online && addrsEqual(p.Addrs, addrs2)
	})
	if got, want := deviceIDs(p), []peer.ID{aliceID}; !slices.Equal(got, want) {
		t.Errorf("alice's devices after a second login: got %v, want %v", got, want)
	}
	// The end of the first session does not take the device offline: no
	// push about alice comes before a later contact event.
	awaitContactEvent(ctx, t, bobS, poke(ctx, t, ts, "bob"), func(u client.Update) string {
		if u.Presence != nil && u.Presence.Username == "alice" && (!u.Presence.Online || len(u.Presence.Devices) != 1) {
			return "alice offline or listed twice"
		}
		return ""
	})
	if err := second.Err(); err != nil {
		t.Fatalf("second session: got %v, want alive", err)
	}
	book, err := bob.Contacts(ctx)
	if err != nil {
		t.Fatalf("bob Contacts: %v", err)
	}
	if len(book.Accepted) != 1 {
		t.Fatalf("bob's contacts: got %d, want 1 (alice)", len(book.Accepted))
	}
	if got, want := deviceIDs(book.Accepted[0]), []peer.ID{aliceID}; !book.Accepted[0].Online || !slices.Equal(got, want) {
		t.Errorf("bob's view of alice: got online=%v devices %v, want online with %v", book.Accepted[0].Online, got, want)
	}
	devs, err := alice.Devices(ctx)
	if err != nil {
		t.Fatalf("alice Devices: %v", err)
	}
	if len(devs) != 1 || !devs[0].Online {
		t.Errorf("alice's devices: got %+v, want one, online", devs)
	}
}

func TestSessionRejectsOtherRequests(t *testing.T) {
	ts := startServer(t, noLimits)
	ctx := testContext(t)

	tests := []struct {
		name    string
		req     *pb.Request
		wantMsg string
	}{
		{
			name:    "register",
			req:     &pb.Request{Body: &pb.Request_Register{Register: &pb.RegisterRequest{Username: "mallory", Password: "password1"}}},
			wantMsg: "only pings and address updates",
		},
		{
			name:    "second login",
			req:     &pb.Request{Body: &pb.Request_Login{Login: &pb.LoginRequest{}}},
			wantMsg: "only pings and address updates",
		},
		{
			name:    "list contacts",
			req:     &pb.Request{Body: &pb.Request_ListContacts{ListContacts: &pb.ListContactsRequest{}}},
			wantMsg: "only pings and address updates",
		},
		{
			name:    "empty request",
			req:     &pb.Request{},
			wantMsg: "only pings and address updates",
		},
		{
			name:    "invalid address",
			req:     &pb.Request{Body: &pb.Request_UpdateAddrs{UpdateAddrs: &pb.UpdateAddrsRequest{Addrs: [][]byte{{0xff, 0xff}}}}},
			wantMsg: "invalid multiaddr",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, n := newClient(t, ts)
			if _, err := c.Register(ctx, fmt.Sprintf("user%d", i), "password1"); err != nil {
				t.Fatalf("Register: %v", err)
			}
			st, r := rawLogin(ctx, t, ts, n)
			// A ping first: the session works.
			ping := &pb.Request{Body: &pb.Request_Ping{Ping: &pb.PingRequest{}}}
			if err := wire.Write(st, ping, rendezvous.MaxRequestSize); err != nil {
				t.Fatalf("write ping: %v", err)
			}
			pong := new(pb.Response)
			if err := r.Read(pong); err != nil || pong.GetPong() == nil {
				t.Fatalf("after a ping: got %v, %v, want a pong", pong, err)
			}
			if err := wire.Write(st, tt.req, rendezvous.MaxRequestSize); err != nil {
				t.Fatalf("write request: %v", err)
			}
			var resp *pb.Response
			for resp == nil {
				m := new(pb.Response)
				if err := r.Read(m); err != nil {
					t.Fatalf("read: got %v, want an error response", err)
				}
				if m.GetStatus() != pb.Status_STATUS_OK {
					resp = m
				}
			}
			err := rendezvous.ResponseError(resp)
			if !errors.Is(err, rendezvous.ErrBadRequest) {
				t.Errorf("session end: got %v (status %v), want ErrBadRequest", err, resp.GetStatus())
			}
			if !strings.Contains(resp.GetMessage(), tt.wantMsg) {
				t.Errorf("message: got %q, want it to contain %q", resp.GetMessage(), tt.wantMsg)
			}
			// The server ends the session after its final frame.
			if err := r.Read(new(pb.Response)); err == nil {
				t.Errorf("read after the final frame: got another frame, want the stream closed")
			}
		})
	}
}

func TestCertificate(t *testing.T) {
	const lifetime = 2 * time.Second
	ts := startServer(t, noLimits, func(c *server.Config) { c.CertLifetime = lifetime })
	ctx := testContext(t)
	start := time.Now()

	alice, aliceID := registerDevice(ctx, t, ts, "alice", "password1")
	s := login(ctx, t, alice, nil)
	if !s.Server.CertKey.Equals(ts.srv.CertPublicKey()) {
		t.Errorf("login ServerInfo key: got %v, want the server's certificate key", s.Server.CertKey)
	}
	if s.Server.CertLifetime != lifetime {
		t.Errorf("login ServerInfo lifetime: got %v, want %v", s.Server.CertLifetime, lifetime)
	}
	info, err := alice.ServerInfo(ctx)
	if err != nil {
		t.Fatalf("ServerInfo: %v", err)
	}
	if !info.CertKey.Equals(s.Server.CertKey) || info.CertLifetime != lifetime {
		t.Errorf("ServerInfo: got key %v lifetime %v, want the login's key and %v", info.CertKey, info.CertLifetime, lifetime)
	}
	// Anyone may ask, enrolled or not.
	anon, _ := newClient(t, ts)
	if info, err := anon.ServerInfo(ctx); err != nil || !info.CertKey.Equals(s.Server.CertKey) {
		t.Errorf("ServerInfo from an un-enrolled device: got %v, %v, want the certificate key", info.CertKey, err)
	}

	v, err := cert.NewVerifier(s.Server.CertKey)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	first, err := v.VerifyFor(s.Certificate(), aliceID, time.Now())
	if err != nil {
		t.Fatalf("VerifyFor(login certificate): %v", err)
	}
	if first.Username != "alice" || first.Peer != aliceID {
		t.Errorf("login certificate: got %s for %s, want alice for %s", first.Username, first.Peer, aliceID)
	}
	if got := first.Expires.Sub(first.Issued); got != lifetime {
		t.Errorf("login certificate: got lifetime %v, want %v", got, lifetime)
	}
	if lo, hi := start.Add(-time.Second), time.Now().Add(time.Second); first.Issued.Before(lo) || first.Issued.After(hi) {
		t.Errorf("login certificate: got issued %v, want between %v and %v", first.Issued, lo, hi)
	}
	if _, err := v.VerifyFor(s.Certificate(), nodetest.PeerID(t), time.Now()); !errors.Is(err, cert.ErrWrongPeer) {
		t.Errorf("VerifyFor(another peer): got %v, want ErrWrongPeer", err)
	}

	// The session renews the certificate before it expires.
	rctx, cancel := context.WithDeadline(ctx, first.Expires)
	defer cancel()
	if err := tstest.Poll(rctx, func() error {
		if !bytes.Equal(s.Certificate(), first.Raw) {
			return nil
		}
		return fmt.Errorf("certificate not renewed before it expired at %v", first.Expires)
	}); err != nil {
		t.Fatal(err)
	}
	renewedAt := time.Now()
	renewed, err := v.VerifyFor(s.Certificate(), aliceID, renewedAt)
	if err != nil {
		t.Fatalf("VerifyFor(renewed certificate): %v", err)
	}
	t.Logf("certificate renewed %v after issue (lifetime %v)", renewedAt.Sub(first.Issued), lifetime)
	if renewed.Username != "alice" {
		t.Errorf("renewed certificate: got username %q, want alice", renewed.Username)
	}
	if !renewed.Issued.After(first.Issued) || !renewed.Expires.After(first.Expires) {
		t.Errorf("renewed certificate: got valid %v to %v, want later than %v to %v", renewed.Issued, renewed.Expires, first.Issued, first.Expires)
	}
	if err := s.Err(); err != nil {
		t.Errorf("session after renewal: got %v, want alive", err)
	}
}

func TestCertificateOtherIssuer(t *testing.T) {
	tsA := startServer(t, noLimits)
	tsB := startServer(t, noLimits)
	ctx := testContext(t)

	a, aID := registerDevice(ctx, t, tsA, "alice", "password1")
	b, bID := registerDevice(ctx, t, tsB, "alice", "password1")
	sA := login(ctx, t, a, nil)
	sB := login(ctx, t, b, nil)
	if sA.Server.CertKey.Equals(sB.Server.CertKey) {
		t.Fatalf("two servers with fresh keys: got the same certificate key")
	}

	vA, err := cert.NewVerifier(sA.Server.CertKey)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	if _, err := vA.VerifyFor(sB.Certificate(), bID, time.Now()); !errors.Is(err, cert.ErrUnknownIssuer) {
		t.Errorf("verify B's certificate with A's key: got %v, want ErrUnknownIssuer", err)
	}
	// Trusting both keys (a rotation) accepts both.
	vAB, err := cert.NewVerifier(sA.Server.CertKey, sB.Server.CertKey)
	if err != nil {
		t.Fatalf("NewVerifier(two keys): %v", err)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		id   peer.ID
	}{{"A", sA.Certificate(), aID}, {"B", sB.Certificate(), bID}} {
		if _, err := vAB.VerifyFor(tc.raw, tc.id, time.Now()); err != nil {
			t.Errorf("verify %s's certificate trusting both keys: got %v, want nil", tc.name, err)
		}
	}
}

func TestCertificateNotRenewedAfterRevocation(t *testing.T) {
	const lifetime = time.Second // renewed every 500ms
	ts := startServer(t, noLimits, func(c *server.Config) { c.CertLifetime = lifetime })
	ctx := testContext(t)

	d1 := register(ctx, t, ts, "alice", "password1")
	d2, n2 := newClient(t, ts)
	if _, err := d2.Enrol(ctx, "alice", "password1"); err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	s1 := login(ctx, t, d1, nil)
	s2 := login(ctx, t, d2, nil)

	if err := d1.RevokeDevice(ctx, n2.ID()); err != nil {
		t.Fatalf("RevokeDevice: %v", err)
	}
	if err := sessionEnd(ctx, t, s2); !errors.Is(err, rendezvous.ErrDeviceRevoked) {
		t.Errorf("revoked device's session: got %v, want ErrDeviceRevoked", err)
	}
	revokedCert := s2.Certificate()
	// The other device keeps being renewed; the revoked one is not.
	c1 := s1.Certificate()
	if err := tstest.Poll(ctx, func() error {
		if !bytes.Equal(s1.Certificate(), c1) {
			return nil
		}
		return errors.New("the remaining device's certificate was not renewed")
	}); err != nil {
		t.Fatal(err)
	}
	c1 = s1.Certificate()
	if err := tstest.Poll(ctx, func() error {
		if !bytes.Equal(s1.Certificate(), c1) {
			return nil
		}
		return errors.New("the remaining device's certificate was not renewed twice")
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s2.Certificate(), revokedCert) {
		t.Errorf("revoked device: got a renewed certificate, want none")
	}
	if err := s1.Err(); err != nil {
		t.Errorf("remaining device's session: got %v, want alive", err)
	}
}

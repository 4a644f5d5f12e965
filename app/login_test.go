package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

// TestLoginPolicy: what the session loop does after each kind of failure.
func TestLoginPolicy(t *testing.T) {
	const retry = 5 * time.Second
	status := func(s pb.Status, msg string, after time.Duration) error {
		return fmt.Errorf("login: %w", &rendezvous.StatusError{Status: s, Message: msg, RetryAfter: after})
	}
	tests := []struct {
		name        string
		err         error
		wantReason  apitype.LoginReason
		wantStopped bool
		wantWait    time.Duration // ignored when stopped
		wantHint    string
	}{
		{"revoked at login", status(pb.Status_STATUS_PERMISSION_DENIED, rendezvous.ErrDeviceRevoked.Error(), 0), apitype.LoginRevoked, true, 0, "parley enrol"},
		{"revoked in session", &rendezvous.StatusError{Status: pb.Status_STATUS_PERMISSION_DENIED, Message: rendezvous.ErrDeviceRevoked.Error()}, apitype.LoginRevoked, true, 0, IdentityFile},
		{"account deleted", &rendezvous.StatusError{Status: pb.Status_STATUS_UNAUTHENTICATED, Code: "account_deleted", Message: rendezvous.ErrAccountDeleted.Error()}, apitype.LoginAccountDeleted, true, 0, "parley register"},
		{"not enrolled", &rendezvous.StatusError{Status: pb.Status_STATUS_UNAUTHENTICATED, Code: "device_not_enrolled", Message: rendezvous.ErrDeviceNotEnrolled.Error()}, apitype.LoginNotEnrolled, true, 0, "parley enrol"},
		{"go away", fmt.Errorf("session: %w", &client.GoAwayError{RetryAfter: 1500 * time.Millisecond}), apitype.LoginServerLeaving, false, 1500 * time.Millisecond, "by itself"},
		{"go away at once", &client.GoAwayError{}, apitype.LoginServerLeaving, false, 0, "by itself"},
		{"rate limited long", status(pb.Status_STATUS_RATE_LIMITED, "too many attempts", time.Minute), apitype.LoginRateLimited, false, time.Minute, "asked to wait"},
		{"rate limited short", status(pb.Status_STATUS_RATE_LIMITED, "too many attempts", time.Second), apitype.LoginRateLimited, false, retry, "asked to wait"},
		{"server closing", status(pb.Status_STATUS_UNAVAILABLE, "server unavailable", 0), apitype.LoginFailed, false, retry, "--rendezvous"},
		{"unreachable", errors.New("login: open stream to rendezvous server: no addresses"), apitype.LoginFailed, false, retry, "--rendezvous"},
	}
	k := newSessionKeeper(nil, "", retry, filepath.Join("/data", IdentityFile))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			p := k.loginProblem(tt.err)
			if p.Reason != tt.wantReason || p.Stopped != tt.wantStopped {
				t.Fatalf("got reason %s, stopped %v; want %s, %v", p.Reason, p.Stopped, tt.wantReason, tt.wantStopped)
			}
			if !strings.Contains(p.Hint, tt.wantHint) {
				t.Errorf("hint %q does not say %q", p.Hint, tt.wantHint)
			}
			if p.Error == "" || !errors.Is(p.Err(), tt.err) {
				t.Errorf("error: got %q, %v", p.Error, p.Err())
			}
			if tt.wantStopped {
				if !p.RetryAt.IsZero() {
					t.Errorf("stopped, yet retries at %v", p.RetryAt)
				}
				return
			}
			if wait := p.RetryAt.Sub(before); wait < tt.wantWait || wait > tt.wantWait+time.Second {
				t.Errorf("waits %v, want %v", wait, tt.wantWait)
			}
		})
	}
}

// TestSessionKeeper: against a real rendezvous server, the keeper stops
// for a device that is not enrolled, logs in once it is (applying the
// snapshot before the login shows), and stops for good, forgetting the
// account, when the engine ends the session for a known reason; the hooks
// and events come in that order.
func TestSessionKeeper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "rendezvous.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rn := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	srv, err := server.New(t.Context(), rn, store, server.LocalConfig(nodetest.Key(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	n := nodetest.New(t)
	rdv := client.New(n, peer.AddrInfo{ID: rn.ID(), Addrs: rn.Addrs()})

	var mu sync.Mutex
	var got []string // hooks and events, in order
	note := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, s)
	}
	k := newSessionKeeper(rdv, n.ID(), time.Hour, "/data/"+IdentityFile)
	k.start(n.Addrs, func(ev apitype.Event) {
		s := string(ev.Kind)
		if ev.Login != nil {
			s += " " + string(ev.Login.Reason)
		}
		note(s)
	}, sessionHooks{
		up: func(sess *client.Session) []apitype.Event {
			if k.current() != nil {
				t.Error("up: the session shows before its snapshot is applied")
			}
			note("hook up " + sess.Username)
			return []apitype.Event{{Kind: apitype.EventPresence}}
		},
		loggedIn: func() { note("hook loggedIn") },
		update:   func(client.Update) {},
		down:     func() { note("hook down") },
		stopped:  func() { note("hook stopped") },
	})
	defer k.Close()

	if err := k.awaitLogin(ctx); err == nil || !strings.Contains(err.Error(), "not enrolled") {
		t.Fatalf("awaitLogin before enrolling: got %v, want not enrolled", err)
	}
	if _, err := rdv.Register(ctx, "alice", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	if err := k.awaitLogin(ctx); err != nil {
		t.Fatalf("awaitLogin after registering: %v", err)
	}
	if user, loggedIn, p := k.state(); user != "alice" || !loggedIn || p != nil || k.Certificate() == nil {
		t.Fatalf("logged in: user %q, logged in %v, problem %v, certificate %d bytes", user, loggedIn, p, len(k.Certificate()))
	}
	if err := k.awaitStopped(ctx, k.end(rendezvous.ErrAccountDeleted)); err != nil {
		t.Fatal(err)
	}
	if user, loggedIn, p := k.state(); user != "" || loggedIn || p.Reason != apitype.LoginAccountDeleted || k.Certificate() != nil {
		t.Fatalf("stopped: user %q, logged in %v, problem %v, certificate %d bytes", user, loggedIn, p, len(k.Certificate()))
	}
	k.Close()

	mu.Lock()
	defer mu.Unlock()
	// The attempts before registering (one or two: at start, and the one
	// awaitLogin asked for, unless registering came first) find the device
	// not enrolled; the next logs in.
	notEnrolled := []string{"hook stopped", "login_stopped not_enrolled"}
	rest, stops := got, 0
	for len(rest) >= 2 && slices.Equal(rest[:2], notEnrolled) {
		rest, stops = rest[2:], stops+1
	}
	want := []string{
		"hook up alice", "login", "presence", "hook loggedIn",
		"hook down", "hook stopped", "logout account_deleted", "login_stopped account_deleted",
	}
	if stops == 0 || !slices.Equal(rest, want) {
		t.Errorf("hooks and events:\n got  %q\n want %q, after %q once or more", got, want, notEnrolled)
	}
}

// TestAwaitStoppedWaitsForItsReason: a device that already stopped for
// another reason (the server dropped a deleted account's session, and the
// next login found the device not enrolled) is not taken as stopped for
// the reason the engine gives when it ends the session itself; the
// problem recorded next is.
func TestAwaitStoppedWaitsForItsReason(t *testing.T) {
	k := newSessionKeeper(nil, "", time.Hour, IdentityFile)
	k.hooks.stopped = func() {}
	k.failed(rendezvous.ErrDeviceNotEnrolled, 1)
	mark := k.end(rendezvous.ErrAccountDeleted)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := k.awaitStopped(ctx, mark); err == nil {
		t.Fatalf("awaitStopped returned on the earlier problem (%s)", k.Problem().Reason)
	}
	// The login attempt end kicked fails; its problem carries the reason.
	k.failed(rendezvous.ErrDeviceNotEnrolled, 2)
	if err := k.awaitStopped(t.Context(), mark); err != nil {
		t.Fatal(err)
	}
	if got := k.Problem().Reason; got != apitype.LoginAccountDeleted {
		t.Fatalf("stopped for %s, want %s", got, apitype.LoginAccountDeleted)
	}
}

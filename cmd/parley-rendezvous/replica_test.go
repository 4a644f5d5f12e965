package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/postgres/pgtest"
)

// buildServer compiles this command once per test binary run.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "parley-rendezvous")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// replica is a parley-rendezvous process.
type replica struct {
	cmd     *exec.Cmd
	info    peer.AddrInfo
	certKey string        // as printed
	exited  chan struct{} // closed when the process has exited
	err     error         // its exit status, once exited is closed
}

// startReplica starts the server binary with args and waits until it
// prints its addresses.
func startReplica(ctx context.Context, t *testing.T, bin string, args ...string) *replica {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &testLog{t: t, prefix: filepath.Base(args[1]) + ": "}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	r := &replica{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			t.Logf("%s: %s", filepath.Base(args[1]), line)
			switch {
			case strings.HasPrefix(line, "certificate key: "):
				r.certKey = strings.TrimPrefix(line, "certificate key: ")
			case strings.HasPrefix(line, "  /ip4/127.0.0.1/tcp/"):
				if r.info.ID == "" {
					info, err := peer.AddrInfoFromString(strings.TrimSpace(line))
					if err == nil {
						r.info = *info
						close(ready)
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { r.err = cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-r.exited
	})
	select {
	case <-ready:
	case <-r.exited:
		t.Fatalf("%s exited before it was ready: %v", bin, r.err)
	case <-ctx.Done():
		t.Fatalf("%s did not print its addresses: %v", bin, ctx.Err())
	}
	return r
}

type testLog struct {
	t      *testing.T
	prefix string
}

func (l *testLog) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.Contains(line, "ERROR") || strings.Contains(line, "WARN") {
			l.t.Log(l.prefix + line)
		}
	}
	return len(p), nil
}

// device is a client device of one replica.
func device(t *testing.T, r *replica) (*client.Client, peer.ID) {
	t.Helper()
	n := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	return client.New(n, r.info), n.ID()
}

// awaitPresence waits for a presence push about username satisfying ok.
func awaitPresence(ctx context.Context, t *testing.T, s *client.Session, username string, ok func(client.Presence) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		select {
		case u, open := <-s.Updates():
			if !open {
				t.Fatalf("%s's session ended while waiting for %s's presence: %v", s.Username, username, s.Err())
			}
			if u.Presence != nil && u.Presence.Username == username && ok(*u.Presence) {
				return time.Since(start)
			}
		case <-ctx.Done():
			t.Fatalf("%s: no matching presence of %s: %v", s.Username, username, ctx.Err())
		}
	}
}

// TestReplicasSharePostgres runs two server processes on one PostgreSQL
// database: users on different replicas become contacts and see each
// other's presence, certificates from either verify with the shared key,
// a crashed replica's users are shown offline, and a stopped replica's
// clients are told to go away.
func TestReplicasSharePostgres(t *testing.T) {
	db := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin := buildServer(t)
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "cert.key")
	if _, err := node.LoadOrCreateIdentity(keyPath); err != nil {
		t.Fatal(err)
	}
	start := func(name string) *replica {
		return startReplica(ctx, t, bin, "--data", filepath.Join(dir, name), "--db", db, "--cert-key", keyPath,
			"--replica", name, "--local", "--admin", "", "--listen", "/ip4/127.0.0.1/tcp/0")
	}
	a, b := start("replica-a"), start("replica-b")
	if a.certKey == "" || a.certKey != b.certKey {
		t.Fatalf("certificate keys: got %q and %q, want one shared key", a.certKey, b.certKey)
	}
	pub, err := cert.ParsePublicKey(a.certKey)
	if err != nil {
		t.Fatalf("printed certificate key: %v", err)
	}
	verifier, err := cert.NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}

	alice, aliceID := device(t, a)
	bob, bobID := device(t, b)
	if _, err := alice.Register(ctx, "alice", "password1"); err != nil {
		t.Fatalf("register alice on replica a: %v", err)
	}
	if _, err := bob.Register(ctx, "bob", "password1"); err != nil {
		t.Fatalf("register bob on replica b: %v", err)
	}
	// The account made on a is known to b.
	if _, err := client.New(nodetest.New(t), b.info).Register(ctx, "alice", "password2"); !errors.Is(err, rendezvous.ErrUsernameTaken) {
		t.Errorf("register alice again on replica b: got %v, want ErrUsernameTaken", err)
	}

	aliceS, err := alice.Login(ctx, nil)
	if err != nil {
		t.Fatalf("alice login on a: %v", err)
	}
	defer aliceS.Close()
	for _, tc := range []struct {
		name string
		s    *client.Session
		id   peer.ID
	}{{"alice", aliceS, aliceID}} {
		c, err := verifier.VerifyFor(tc.s.Certificate(), tc.id, time.Now())
		if err != nil || c.Username != tc.name {
			t.Errorf("%s's certificate from replica a: got %+v, %v, want valid for %s", tc.name, c, err, tc.name)
		}
	}

	// A request made on a while bob is offline reaches bob at his login on b.
	if _, err := alice.RequestContact(ctx, "bob"); err != nil {
		t.Fatalf("alice requests bob on a: %v", err)
	}
	bobAddrs := []ma.Multiaddr{ma.StringCast("/ip4/198.51.100.7/tcp/4001")}
	bobS, err := bob.Login(ctx, bobAddrs)
	if err != nil {
		t.Fatalf("bob login on b: %v", err)
	}
	if len(bobS.Incoming) != 1 || bobS.Incoming[0] != "alice" {
		t.Fatalf("bob's pending requests at login on b: got %v, want [alice]", bobS.Incoming)
	}
	if c, err := verifier.VerifyFor(bobS.Certificate(), bobID, time.Now()); err != nil || c.Username != "bob" {
		t.Errorf("bob's certificate from replica b: got %+v, %v, want valid for bob", c, err)
	}
	if err := bob.AcceptContact(ctx, "alice"); err != nil {
		t.Fatalf("bob accepts alice on b: %v", err)
	}
	// Presence crosses replicas both ways.
	d := awaitPresence(ctx, t, aliceS, "bob", func(p client.Presence) bool {
		return p.Online && p.Peer == bobID && len(p.Addrs) == 1 && p.Addrs[0].Equal(bobAddrs[0])
	})
	t.Logf("alice on a saw bob (on b) online %v after the accept", d)
	awaitPresence(ctx, t, bobS, "alice", func(p client.Presence) bool { return p.Online && p.Peer == aliceID })

	// Logout on b reaches a.
	bobS.Close()
	d = awaitPresence(ctx, t, aliceS, "bob", func(p client.Presence) bool { return !p.Online && !p.LastSeen.IsZero() })
	t.Logf("alice on a saw bob's logout on b after %v", d)

	// A crash of b: its sessions are retired by a within the replica
	// timeout (LocalConfig: 6 s) plus one heartbeat interval.
	bobS2, err := bob.Login(ctx, bobAddrs)
	if err != nil {
		t.Fatalf("bob logs in on b again: %v", err)
	}
	defer bobS2.Close()
	awaitPresence(ctx, t, aliceS, "bob", func(p client.Presence) bool { return p.Online })
	crashed := time.Now()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	awaitPresence(ctx, t, aliceS, "bob", func(p client.Presence) bool { return !p.Online })
	bound := server.LocalConfig(nil).ReplicaTimeout * 4 / 3
	if d := time.Since(crashed); d > bound+2*time.Second {
		t.Errorf("bob shown offline %v after replica b crashed, want within %v", d, bound)
	} else {
		t.Logf("bob shown offline %v after replica b crashed (bound %v)", d, bound)
	}

	// A graceful stop of a tells alice to come back.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-aliceS.Done():
	case <-ctx.Done():
		t.Fatalf("alice's session did not end after SIGTERM: %v", ctx.Err())
	}
	var goAway *client.GoAwayError
	if err := aliceS.Err(); !errors.As(err, &goAway) || !errors.Is(err, rendezvous.ErrUnavailable) {
		t.Errorf("alice's session after SIGTERM of a: got %v, want a GoAwayError", err)
	}
	select {
	case <-a.exited:
		if a.err != nil {
			t.Errorf("replica a after SIGTERM: got %v, want a clean exit", a.err)
		}
	case <-ctx.Done():
		t.Fatalf("replica a did not exit after SIGTERM")
	}
}
